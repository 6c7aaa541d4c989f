"""The real request-time call."""

import sys

from stages.validate.pair import main

if __name__ == "__main__":
    sys.exit(main())
