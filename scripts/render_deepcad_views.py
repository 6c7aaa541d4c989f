"""The spec's name for the render stage; takes the same arguments as ``python -m stages.render``
(``--help`` lists them)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stages.render.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
