"""A geometric key for finding duplicate models.

Two models with the same key are treated as the same part, so extraction keeps them on one
side of a train/validation split and the synthetic generator never writes both.

What the key ignores, and why: position, orientation and size. Lengths are measured from the
centroid and divided by the solid's radius of gyration, so a copy moved elsewhere, turned, or
drawn in inches instead of millimetres gets the same key. DeepCAD's duplicates are mostly
exact copies (translation alone would do), but a scaled copy renders to the same framed
views, which is what leaks between splits; every measure used is rotation-invariant anyway.

What it holds: the normalised volume, surface area and sorted principal moments of inertia to
3 significant figures, plus the number of solids. Triangle and edge counts are left out: they
depend on how a face happened to be split, not on the shape, and manifold3d's genus depends
on how it resolved bodies touching along an edge.
"""

from __future__ import annotations

import math

import numpy as np
from trimesh.triangles import mass_properties

from stages.cad.solid import Solid

SIGNIFICANT_FIGURES = 3


def geometric_key(solid: Solid) -> str:
    """``v=…|a=…|i=…,…,…|solids=…`` for ``solid`` (see the module docstring)."""
    centred = solid.vertices - solid.vertices.mean(axis=0)
    props = mass_properties(centred[solid.faces], density=1.0)
    volume = float(props.volume)
    moments = np.sort(np.clip(np.linalg.eigvalsh(props.inertia), 0.0, None))
    # Polar second moment J = trace(I) / 2 = volume * radius_of_gyration**2.
    gyration = math.sqrt(float(moments.sum()) / (2.0 * volume))
    fields = [
        f"v={_fmt(volume / gyration**3)}",
        f"a={_fmt(solid.area / gyration**2)}",
        "i=" + ",".join(_fmt(float(m) / gyration**5) for m in moments),
        f"solids={solid.num_solids}",
    ]
    return "|".join(fields)


def _fmt(value: float) -> str:
    return f"{value:.{SIGNIFICANT_FIGURES - 1}e}"
