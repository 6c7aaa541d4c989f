"""The spec's name for the training test-run: ``python -m stages.train --mode test-run`` with the
same arguments (``--help`` lists them); the defaults are the spec's 100 train and 20 validation
samples, 5 epochs, on the tiny model."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stages.train.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["--mode", "test-run", *sys.argv[1:]]))
