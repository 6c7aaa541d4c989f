"""The real render stage drawing the render tests' parts (``tests.render.parts``) instead of
DeepCAD models: ``python -m tests.executors.held_render`` takes the stage's own arguments.

A part spec of ``{"hold": MARKER}`` writes MARKER once its Ray worker is drawing it and then
never finishes, so a test can do something to the cluster while the stage certainly runs.
"""

from __future__ import annotations

import functools
import sys

from stages.render import batch
from stages.render.__main__ import main
from tests.render.parts import load_part_file

if __name__ == "__main__":
    batch.render_dataset = functools.partial(batch.render_dataset, load=load_part_file)
    sys.exit(main())
