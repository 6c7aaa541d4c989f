"""Facts about a triangle mesh that drawing and checking need: face normals, the edges where
the surface creases (what a CAD drawing shows) and whether every edge closes up. Plain numpy
over the face array.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FEATURE_ANGLE_DEGREES = 30.0


@dataclass(frozen=True, slots=True, eq=False)
class EdgeTopology:
    """Each undirected edge shared by exactly two faces, with those faces."""

    edges: np.ndarray  # (E, 2) vertex indices
    face_pairs: np.ndarray  # (E, 2) face indices on either side
    watertight: bool  # every edge has exactly two faces, running in opposite directions


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit normals (M, 3); a zero-area face gets a zero normal."""
    tri = vertices[faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return np.divide(normals, length, out=np.zeros_like(normals), where=length > 0)


def edge_topology(faces: np.ndarray, num_vertices: int) -> EdgeTopology:
    """Pair up the half-edges of ``faces``."""
    half = faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2).astype(np.int64)
    undirected = np.sort(half, axis=1)
    key = undirected[:, 0] * num_vertices + undirected[:, 1]
    order = np.argsort(key, kind="stable")
    _, first, counts = np.unique(key[order], return_index=True, return_counts=True)
    paired = first[counts == 2]
    a, b = order[paired], order[paired + 1]
    watertight = bool(
        len(faces) > 0 and np.all(counts == 2) and np.array_equal(half[a, 0], half[b, 1])
    )
    return EdgeTopology(
        edges=undirected[a].astype(np.int32),
        face_pairs=np.column_stack([a // 3, b // 3]).astype(np.int64),
        watertight=watertight,
    )


def feature_edges(
    topology: EdgeTopology, normals: np.ndarray, angle_degrees: float = FEATURE_ANGLE_DEGREES
) -> np.ndarray:
    """Edges (K, 2) whose two faces meet at more than ``angle_degrees``."""
    cosine = np.einsum(
        "ij,ij->i", normals[topology.face_pairs[:, 0]], normals[topology.face_pairs[:, 1]]
    )
    return topology.edges[cosine < math.cos(math.radians(angle_degrees))]
