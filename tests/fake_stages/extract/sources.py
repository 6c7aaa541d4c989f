"""The real source check: request-time checks run the same code under the fake package."""

import sys

from stages.extract.sources import main

if __name__ == "__main__":
    sys.exit(main())
