"""The named orthographic views, and how one model is framed in all of them.

Convention (Onshape's, which DeepCAD models come from; Z is up):

| view     | camera looks along | image up | image right |
|----------|--------------------|----------|-------------|
| front    | +Y                 | +Z       | +X          |
| back     | -Y                 | +Z       | -X          |
| top      | -Z                 | +Y       | +X          |
| bottom   | +Z                 | -Y       | +X          |
| right    | -X                 | +Z       | +Y          |
| left     | +X                 | +Z       | -Y          |
| iso      | (-1, +1, -1)       | Z tilted | (+1, +1, 0) |

``iso`` looks from the front-right-top corner. Every view of one model uses the same scale and
puts the centre of the model's bounding box at the image centre, so sizes compare across views:
the scale is the smallest that fits the model in all seven views with a margin, whichever views
are asked for (a model's ``front`` image is the same whether or not ``iso`` was rendered).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

MARGIN = 0.06  # fraction of the image left free on each side


@dataclass(frozen=True, slots=True)
class View:
    """An orthographic view direction: ``forward`` is where the camera looks."""

    name: str
    forward: tuple[float, float, float]
    up: tuple[float, float, float]

    def basis(self) -> NDArray[np.float64]:
        """Rows: image right, image up, and backward (towards the camera), all unit vectors."""
        forward = np.asarray(self.forward, dtype=np.float64)
        forward /= np.linalg.norm(forward)
        up = np.asarray(self.up, dtype=np.float64)
        up = up - up.dot(forward) * forward
        up /= np.linalg.norm(up)
        right = np.cross(forward, up)
        return np.stack([right, up, -forward])


VIEW_TABLE: dict[str, View] = {
    view.name: view
    for view in (
        View("front", (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
        View("top", (0.0, 0.0, -1.0), (0.0, 1.0, 0.0)),
        View("right", (-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
        View("back", (0.0, -1.0, 0.0), (0.0, 0.0, 1.0)),
        View("left", (1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
        View("bottom", (0.0, 0.0, 1.0), (0.0, -1.0, 0.0)),
        View("iso", (-1.0, 1.0, -1.0), (0.0, 0.0, 1.0)),
    )
}
VIEWS: tuple[str, ...] = tuple(VIEW_TABLE)
DEFAULT_VIEWS: tuple[str, ...] = ("front", "top", "right")
COMPOSITE_VIEWS: tuple[str, ...] = ("iso", "front", "top", "right")


def parse_views(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``"front,top"`` or a list of names -> a tuple, no repeats; ValueError names a bad one."""
    names = text.split(",") if isinstance(text, str) else list(text)
    names = [n.strip().lower() for n in names if n.strip()]
    if not names:
        raise ValueError("no views given")
    for name in names:
        if name not in VIEW_TABLE:
            raise ValueError(f"unknown view {name!r} (known: {', '.join(VIEWS)})")
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True, slots=True)
class Framing:
    """Where the cameras of one model point and how much of the world one image spans.

    ``half_size`` is half the side of the square every view shows (world units); ``radius``
    bounds the model around ``center`` (used for camera distance and depth range).
    """

    center: NDArray[np.float64]
    half_size: float
    radius: float

    def camera_pose(self, view: View) -> NDArray[np.float64]:
        """4x4 camera-to-world matrix (pyrender looks along the camera's -Z)."""
        basis = self.view_basis(view)
        pose = np.eye(4)
        pose[:3, :3] = basis.T
        pose[:3, 3] = self.center + basis[2] * 2.0 * self.radius
        return pose

    def view_basis(self, view: View) -> NDArray[np.float64]:
        return _BASES[view.name]


_BASES: dict[str, NDArray[np.float64]] = {name: v.basis() for name, v in VIEW_TABLE.items()}


def frame_model(vertices: NDArray[np.floating]) -> Framing:
    """One framing for every view of a model: fits all seven views with ``MARGIN`` to spare."""
    points = np.asarray(vertices, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
        raise ValueError("a model needs at least one 3D vertex to be framed")
    low, high = points.min(axis=0), points.max(axis=0)
    center = (low + high) / 2.0
    offsets = points - center
    image_axes = np.concatenate([basis[:2] for basis in _BASES.values()])  # (14, 3)
    extent = float(np.abs(offsets @ image_axes.T).max())
    radius = float(np.linalg.norm(offsets, axis=1).max())
    if not np.isfinite(extent) or extent <= 0.0:
        raise ValueError("a model with no extent cannot be framed")
    return Framing(center=center, half_size=extent / (1.0 - 2.0 * MARGIN), radius=radius)
