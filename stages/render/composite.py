"""The 2x2 composite: iso top-left, front top-right, top bottom-left, right bottom-right.

Like OpenECAD's orthographic mode: one picture holding a 3D impression and the three views
an engineer reads. It has the same size as the single views; each tile is a view shrunk by
half with a box filter (which also smooths the aliased edges), so it costs no extra render.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from stages.render.views import COMPOSITE_VIEWS


def compose(images: Mapping[str, NDArray[np.uint8]], resolution: int) -> NDArray[np.uint8]:
    """The composite of ``images`` (which must hold every view in COMPOSITE_VIEWS)."""
    missing = [name for name in COMPOSITE_VIEWS if name not in images]
    if missing:
        raise ValueError(f"the composite needs the views {', '.join(missing)}")
    left = resolution // 2
    sizes = (left, resolution - left)
    sheet = Image.new("RGB", (resolution, resolution), (255, 255, 255))
    for index, name in enumerate(COMPOSITE_VIEWS):
        row, column = divmod(index, 2)
        tile = Image.fromarray(images[name]).resize(
            (sizes[column], sizes[row]), Image.Resampling.BOX
        )
        sheet.paste(tile, (column * left, row * left))
    return np.asarray(sheet)
