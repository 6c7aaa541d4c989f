"""The separate solids of a model under construction, kept apart as an exact kernel keeps them.

manifold3d joins bodies that merely touch along an edge into one connected mesh, while
OpenCascade (DeepCAD's kernel) keeps them as separate solids. So the builder keeps a list of
solids: a fused part merges with exactly those solids it overlaps or shares a face with,
which is when the union's surface area is smaller than the sum of both areas (touching
along an edge or at a point removes no area). A cut can split a body; its pieces stay one
entry here (they are counted apart), which only matters if a later join touches one piece.
"""

from __future__ import annotations

import manifold3d

Bodies = list[manifold3d.Manifold]


def fuse(bodies: Bodies, part: manifold3d.Manifold, area_eps: float) -> Bodies:
    """Join ``part``: it merges with every body it overlaps or shares a face with."""
    merged = part
    merged_area = part.surface_area()
    kept: Bodies = []
    for body in bodies:
        union = merged + body
        if union.surface_area() < merged_area + body.surface_area() - area_eps:
            merged = union
            merged_area = union.surface_area()
        else:
            kept.append(body)
    return [*kept, merged]


def cut(bodies: Bodies, part: manifold3d.Manifold, volume_eps: float) -> Bodies:
    """Subtract ``part`` from every body (a body may fall apart: ``count_solids`` sees it)."""
    return [r for r in (body - part for body in bodies) if r.volume() > volume_eps]


def intersect(bodies: Bodies, part: manifold3d.Manifold, volume_eps: float) -> Bodies:
    """Keep only what every body shares with ``part``."""
    return [r for r in (body ^ part for body in bodies) if r.volume() > volume_eps]


def count_solids(bodies: Bodies, volume_eps: float) -> int:
    """Connected pieces enclosing volume; an inner void's shell (negative volume) is no solid."""
    return sum(1 for body in bodies for piece in body.decompose() if piece.volume() > volume_eps)
