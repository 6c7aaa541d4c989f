"""The real host probe: only the long-running stages are faked."""

import sys

from stages.hostinfo import main

if __name__ == "__main__":
    sys.exit(main())
