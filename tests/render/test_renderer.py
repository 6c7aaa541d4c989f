"""The renderer's pictures, read pixel by pixel against what the geometry predicts."""

from __future__ import annotations

import manifold3d
import numpy as np
import pytest

from stages.render.composite import compose
from stages.render.views import VIEWS, frame_model
from tests.render.parts import box, plate_with_hole, solid_from_manifold
from tests.render.pixels import PAPER, ink_mask, part_mask, pixel_box, project

RES = 256
AXIS_VIEWS = ("front", "back", "top", "bottom", "right", "left")
# The view convention, written out independently of stages.render.views: image right, image up.
CONVENTION = {
    "front": ((1, 0, 0), (0, 0, 1)),
    "back": ((-1, 0, 0), (0, 0, 1)),
    "top": ((1, 0, 0), (0, 1, 0)),
    "bottom": ((1, 0, 0), (0, -1, 0)),
    "right": ((0, 1, 0), (0, 0, 1)),
    "left": ((0, -1, 0), (0, 0, 1)),
}


def box_with_corner_marker():
    """A box with a small cube sticking out at its +X+Y+Z corner: asymmetric in every view."""
    body = manifold3d.Manifold.cube((0.06, 0.04, 0.02))
    marker = manifold3d.Manifold.cube((0.015, 0.015, 0.015)).translate((0.055, 0.035, 0.015))
    return solid_from_manifold(body + marker)


def test_plate_hole_shows_from_top_and_not_from_front(renderer):
    plate = plate_with_hole(size=(0.08, 0.06, 0.01), hole_radius=0.012)
    images = renderer.render(plate, ["top", "front"], RES)
    framing = frame_model(plate.vertices)

    column, row = (round(c) for c in project(framing, "top", (0, 0, 0.005), RES))
    assert images["top"][row, column].min() >= PAPER, "the hole's centre is paper from the top"
    column, row = (round(c) for c in project(framing, "top", (0.025, 0, 0.005), RES))
    assert part_mask(images["top"])[row, column], "beside the hole is plate"

    front = images["front"]
    column, row = (round(c) for c in project(framing, "front", (0, -0.03, 0), RES))
    assert part_mask(front)[row, column], "from the front the plate is solid at its centre"
    left, top, right, bottom = pixel_box(part_mask(front))
    interior = ink_mask(front)[top + 3 : bottom - 2, left + 3 : right - 2]
    assert not interior.any(), "the hole's edges are hidden in the front view"


@pytest.mark.parametrize("view", AXIS_VIEWS)
def test_silhouette_lands_where_geometry_predicts(renderer, view):
    part = box((0.08, 0.04, 0.02), offset=(0.3, -0.2, 0.1))
    image = renderer.render(part, [view], RES)[view]
    framing = frame_model(part.vertices)
    corners = np.array(np.meshgrid([0.26, 0.34], [-0.22, -0.18], [0.09, 0.11])).reshape(3, -1).T
    projected = np.array([project(framing, view, c, RES) for c in corners])
    left, top, right, bottom = pixel_box(part_mask(image))
    assert abs(left - projected[:, 0].min()) <= 1.5
    assert abs(right + 1 - projected[:, 0].max()) <= 1.5
    assert abs(top - projected[:, 1].min()) <= 1.5
    assert abs(bottom + 1 - projected[:, 1].max()) <= 1.5


@pytest.mark.parametrize("view", AXIS_VIEWS)
def test_views_follow_the_documented_convention(renderer, view):
    """The marker at +X+Y+Z sticks out of the box's outline in the corner the table predicts."""
    image = renderer.render(box_with_corner_marker(), [view], RES)[view]
    right, up = (np.array(axis, dtype=float) for axis in CONVENTION[view])
    marker_right, marker_up = right.sum() > 0, up.sum() > 0
    mask = part_mask(image)
    left, top, right_edge, bottom = pixel_box(mask)
    band = (bottom - top + 1) // 5
    top_band, bottom_band = mask[top : top + band], mask[bottom - band + 1 : bottom + 1]
    marker_band, box_band = (top_band, bottom_band) if marker_up else (bottom_band, top_band)
    middle = (left + right_edge) / 2
    marker_columns = np.flatnonzero(marker_band.any(axis=0))
    box_columns = np.flatnonzero(box_band.any(axis=0))
    assert len(marker_columns) > 0
    if marker_right:
        assert marker_columns.min() > middle, f"{view}: +X+Y+Z should be on the right"
    else:
        assert marker_columns.max() < middle, f"{view}: +X+Y+Z should be on the left"
    assert box_columns.min() < middle < box_columns.max(), f"{view}: the box spans the far band"


def test_every_view_has_the_same_scale(renderer):
    part = box((0.08, 0.04, 0.02))
    images = renderer.render(part, ["front", "top", "right"], RES)
    boxes = {name: pixel_box(part_mask(image)) for name, image in images.items()}
    width = {name: b[2] - b[0] + 1 for name, b in boxes.items()}
    height = {name: b[3] - b[1] + 1 for name, b in boxes.items()}
    assert abs(width["front"] - width["top"]) <= 1  # X
    assert abs(height["front"] - height["right"]) <= 1  # Z
    assert abs(height["top"] - width["right"]) <= 1  # Y
    assert width["front"] / height["top"] == pytest.approx(2.0, rel=0.04)


def test_background_is_white_and_edges_are_dark(renderer):
    part = box((0.08, 0.04, 0.02))
    image = renderer.render(part, ["front"], RES)["front"]
    mask = part_mask(image)
    assert (image[~mask] == 255).all(), "all paper is pure white"
    assert image[0, 0].tolist() == [255, 255, 255]
    left, top, right, bottom = pixel_box(mask)
    rows = range(top + 2, bottom - 1)
    assert all(ink_mask(image)[row, left] for row in rows), "the left outline is inked"
    assert all(ink_mask(image)[row, right] for row in rows), "the right outline is inked"
    face = image[top + 3 : bottom - 2, left + 3 : right - 2]
    assert face.min() > 120, "a face seen square-on is light grey, not ink"


def test_iso_tells_the_three_visible_faces_apart(renderer):
    image = renderer.render(box((0.05, 0.05, 0.05)), ["iso"], RES)["iso"]
    faces = image[part_mask(image) & ~ink_mask(image)]
    shades, counts = np.unique(faces[:, 0], return_counts=True)
    main_shades = shades[counts > 0.1 * counts.sum()]
    assert len(main_shades) == 3
    assert np.diff(np.sort(main_shades)).min() >= 20, "the faces differ visibly"


def test_renders_are_deterministic(renderer):
    plate = plate_with_hole()
    first = renderer.render(plate, ["front", "top", "iso"], RES)
    renderer.render(box((0.2, 0.1, 0.3)), ["right"], 128)  # other state in between
    second = renderer.render(plate, ["front", "top", "iso"], RES)
    for view in first:
        assert np.array_equal(first[view], second[view]), view


@pytest.mark.parametrize("resolution", [64, 2048])
def test_resolution_limits_render(renderer, resolution):
    image = renderer.render(box((0.02, 0.02, 0.02)), ["top"], resolution)["top"]
    assert image.shape == (resolution, resolution, 3)
    # a cube fills (0.88 / (2 * 0.816))^2 = 0.29 of a view: the iso view sets the common scale
    assert part_mask(image).mean() == pytest.approx(0.29, abs=0.03)
    left, top, _, bottom = pixel_box(part_mask(image))
    outline = ink_mask(image)[(top + bottom) // 2, left : left + 20].sum()
    assert outline == max(1, resolution // 512), "edges thicken with the image"


@pytest.mark.parametrize("resolution", [63, 2049])
def test_resolution_out_of_range_is_refused(renderer, resolution):
    with pytest.raises(ValueError, match="out of range"):
        renderer.render(box((0.02, 0.02, 0.02)), ["top"], resolution)


def test_unknown_view_is_refused(renderer):
    with pytest.raises(ValueError, match="unknown view 'side'"):
        renderer.render(box((0.02, 0.02, 0.02)), ["front", "side"], RES)


def test_all_views_render_the_part(renderer):
    images = renderer.render(plate_with_hole(), VIEWS, 128)
    assert list(images) == list(VIEWS)
    for view, image in images.items():
        assert part_mask(image).any() and ink_mask(image).any(), view


def test_composite_tiles_iso_front_top_right(renderer):
    images = renderer.render(plate_with_hole(), ["iso", "front", "top", "right"], RES)
    sheet = compose(images, RES)
    assert sheet.shape == (RES, RES, 3)
    half = RES // 2
    tiles = {
        "iso": sheet[:half, :half],
        "front": sheet[:half, half:],
        "top": sheet[half:, :half],
        "right": sheet[half:, half:],
    }
    top_tile = part_mask(tiles["top"])
    assert top_tile[half // 2, half // 2] == np.False_, "the top tile shows the hole"
    for name, tile in tiles.items():
        expected = part_mask(images[name])[::2, ::2]
        agreement = (part_mask(tile) == expected).mean()
        assert agreement > 0.97, name
    with pytest.raises(ValueError, match="needs the views"):
        compose({"front": images["front"]}, RES)
