"""Shading normals: curved faces blend, creases stay sharp."""

from __future__ import annotations

import manifold3d
import numpy as np

from stages.render.edges import unit_face_normals
from stages.render.normals import corner_normals
from tests.render.parts import box, solid_from_manifold
from tests.render.pixels import ink_mask, part_mask


def coarse_cylinder():
    body = manifold3d.Manifold.cylinder(0.04, 0.01, 0.01, circular_segments=16)
    return solid_from_manifold(body)


def test_a_box_keeps_one_normal_per_face():
    part = box((0.03, 0.02, 0.01))
    faces = unit_face_normals(part.vertices, part.faces)
    normals = corner_normals(part.vertices, part.faces, faces)
    assert np.allclose(normals, np.repeat(faces, 3, axis=0))


def test_a_cylinder_side_gets_radial_normals_and_flat_caps():
    part = coarse_cylinder()
    faces = unit_face_normals(part.vertices, part.faces)
    normals = corner_normals(part.vertices, part.faces, faces).reshape(-1, 3, 3)
    corners = part.vertices[part.faces]
    side = np.abs(faces[:, 2]) < 1e-6
    radial = corners[side].copy()
    radial[..., 2] = 0.0
    radial /= np.linalg.norm(radial, axis=-1, keepdims=True)
    assert np.einsum("fck,fck->fc", normals[side], radial).min() > 0.999
    caps = normals[~side]
    assert np.allclose(np.abs(caps[..., 2]), 1.0)


def test_a_faceted_cylinder_is_shaded_without_bands(renderer):
    image = renderer.render(coarse_cylinder(), ["front"], 256)["front"].astype(int)
    row = image.shape[0] // 2
    columns = np.flatnonzero(part_mask(image)[row] & ~ink_mask(image)[row])
    inner = columns[10:-10]  # away from the rims, where the shade falls off steeply
    bends = np.abs(np.diff(image[row, inner, 0], n=2))
    assert bends.max() <= 3, "no step where two facets meet"
    assert image[row, inner, 0].max() - image[row, inner, 0].min() > 30, "still shaded round"
