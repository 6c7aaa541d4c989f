"""The real inference worker (the fuzzer's jobs leave no checkpoint, so it is rarely met)."""

import sys

from stages.train.infer_worker import main

if __name__ == "__main__":
    sys.exit(main())
