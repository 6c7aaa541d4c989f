"""Shading normals: smooth across a curved surface's facets, sharp across its creases.

With one normal per triangle, a cylinder drawn from the side shows a band per facet. Here each
corner of a triangle gets the mean normal of the triangles around its vertex that turn less than
``CREASE_DEGREES`` from its own, each weighted by its angle at that vertex (so how a facet was
split into triangles does not tilt the result), so facets of one curved face blend, while a
plane meeting a cylinder at a right angle keeps its edge. Plain numpy over corner pairs.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

CREASE_DEGREES = 30.0  # the solid builder's feature-edge angle: smooth exactly where it draws none


def corner_normals(
    vertices: NDArray[np.floating],
    faces: NDArray[np.integer],
    face_normals: NDArray[np.float64],
    crease_degrees: float = CREASE_DEGREES,
) -> NDArray[np.float64]:
    """(3M, 3) unit normals, one per triangle corner in ``faces.ravel()`` order."""
    faces = np.asarray(faces, dtype=np.int64)
    angles = corner_angles(np.asarray(vertices, dtype=np.float64)[faces]).ravel()
    corner_vertex = faces.ravel()
    corner_face = np.repeat(np.arange(len(faces)), 3)

    # Every ordered pair of corners that share a vertex (each corner pairs with itself too).
    order = np.argsort(corner_vertex, kind="stable")
    _, starts, sizes = np.unique(corner_vertex[order], return_index=True, return_counts=True)
    group_size = np.repeat(sizes, sizes)  # per sorted corner: corners around its vertex
    group_start = np.repeat(starts, sizes)
    left = np.repeat(np.arange(len(order)), group_size)
    offset_in_group = np.arange(len(left)) - np.repeat(
        np.cumsum(group_size) - group_size, group_size
    )
    right = np.repeat(group_start, group_size) + offset_in_group
    left_face, right_face = corner_face[order[left]], corner_face[order[right]]

    cosine = np.einsum("ij,ij->i", face_normals[left_face], face_normals[right_face])
    weight = np.where(cosine > math.cos(math.radians(crease_degrees)), angles[order[right]], 0.0)
    target = order[left]
    contribution = face_normals[right_face] * weight[:, None]
    summed = np.stack(
        [np.bincount(target, contribution[:, k], minlength=len(order)) for k in range(3)], axis=1
    )
    lengths = np.linalg.norm(summed, axis=1, keepdims=True)
    fallback = face_normals[corner_face]  # a corner of a zero-area face keeps its face's normal
    return np.where(lengths > 0, summed / np.where(lengths > 0, lengths, 1.0), fallback)


def corner_angles(corners: NDArray[np.float64]) -> NDArray[np.float64]:
    """(M, 3) interior angle of each triangle at each of its corners, in radians."""
    to_next = np.roll(corners, -1, axis=1) - corners
    to_previous = np.roll(corners, 1, axis=1) - corners
    cosine = np.einsum("fck,fck->fc", to_next, to_previous)
    lengths = np.linalg.norm(to_next, axis=2) * np.linalg.norm(to_previous, axis=2)
    cosine = np.divide(cosine, lengths, out=np.ones_like(cosine), where=lengths > 0)
    return np.arccos(np.clip(cosine, -1.0, 1.0))
