"""The real preflight: training requests are checked by the same code under the fake package."""

import sys

from stages.train.preflight import main

if __name__ == "__main__":
    sys.exit(main())
