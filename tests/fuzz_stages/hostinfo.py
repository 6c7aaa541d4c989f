"""The real host probe."""

import sys

from stages.hostinfo import main

if __name__ == "__main__":
    sys.exit(main())
