"""The real request-time call."""

import sys

from stages.train.preflight import main

if __name__ == "__main__":
    sys.exit(main())
