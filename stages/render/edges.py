"""The black lines of a drawing: crease (feature) edges plus each view's silhouette.

Feature edges come with the solid. A silhouette edge joins a face turned towards the camera
and one turned away; faces seen exactly edge-on count as turned away, or the outline of a
part vanishes wherever a face is parallel to the view (the sides of a plate seen from the front).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh
from numpy.typing import NDArray

FACING_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class EdgeSet:
    """What a model's lines need, computed once and reused for every view."""

    face_normals: NDArray[np.float64]  # (M, 3) unit normals
    adjacent_faces: NDArray[np.int64]  # (E, 2) faces sharing an edge
    adjacent_edges: NDArray[np.int64]  # (E, 2) vertex pairs of those shared edges
    feature_edges: NDArray[np.int64]  # (K, 2) crease edges given by the solid


def unit_face_normals(vertices: NDArray[np.floating], faces: NDArray[np.integer]) -> NDArray:
    """Right-hand-rule face normals; degenerate faces get a zero normal."""
    corners = np.asarray(vertices, dtype=np.float64)[faces]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    lengths = np.linalg.norm(normals, axis=1, keepdims=True)
    return np.divide(normals, lengths, out=np.zeros_like(normals), where=lengths > 0)


def build_edge_set(
    vertices: NDArray[np.floating],
    faces: NDArray[np.integer],
    feature_edges: NDArray[np.integer],
) -> EdgeSet:
    faces = np.asarray(faces, dtype=np.int64)
    adjacent_faces, adjacent_edges = trimesh.graph.face_adjacency(faces=faces, return_edges=True)
    return EdgeSet(
        face_normals=unit_face_normals(vertices, faces),
        adjacent_faces=np.asarray(adjacent_faces, dtype=np.int64).reshape(-1, 2),
        adjacent_edges=np.asarray(adjacent_edges, dtype=np.int64).reshape(-1, 2),
        feature_edges=np.asarray(feature_edges, dtype=np.int64).reshape(-1, 2),
    )


def silhouette_edges(edges: EdgeSet, toward_camera: NDArray[np.float64]) -> NDArray[np.int64]:
    """Vertex pairs of the edges between camera-facing and other faces, for one view."""
    facing = edges.face_normals @ toward_camera > FACING_EPSILON
    pairs = facing[edges.adjacent_faces]
    return edges.adjacent_edges[pairs[:, 0] != pairs[:, 1]]


def view_lines(edges: EdgeSet, toward_camera: NDArray[np.float64]) -> NDArray[np.int64]:
    """Every edge drawn in one view (features and silhouettes, each once), as vertex pairs."""
    lines = np.concatenate([edges.feature_edges, silhouette_edges(edges, toward_camera)])
    if len(lines) == 0:
        return lines
    return np.unique(np.sort(lines, axis=1), axis=0)
