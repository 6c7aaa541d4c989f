"""Reading rendered pictures in tests: what is paper, what is part, what is ink, and where
geometry says a point should land in a view."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from stages.render.views import VIEW_TABLE, Framing

PAPER = 250  # every channel at or above this is background
INK = 60  # every channel at or below this is an edge line


def part_mask(image: NDArray[np.uint8]) -> NDArray[np.bool_]:
    return image.min(axis=2) < PAPER


def ink_mask(image: NDArray[np.uint8]) -> NDArray[np.bool_]:
    return image.max(axis=2) <= INK


def pixel_box(mask: NDArray[np.bool_]) -> tuple[int, int, int, int]:
    """(first column, first row, last column, last row) of the True pixels."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def project(framing: Framing, view: str, point, resolution: int) -> tuple[float, float]:
    """(column, row) in pixels where a world point lands in ``view``."""
    basis = framing.view_basis(VIEW_TABLE[view])
    offset = np.asarray(point, dtype=np.float64) - framing.center
    u = offset @ basis[0] / framing.half_size
    v = offset @ basis[1] / framing.half_size
    return (u + 1.0) / 2.0 * resolution, (1.0 - v) / 2.0 * resolution
