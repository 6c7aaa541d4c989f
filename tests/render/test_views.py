"""View names, view frames and the framing shared by all views of a model."""

from __future__ import annotations

import numpy as np
import pytest

from stages.render.views import MARGIN, VIEW_TABLE, VIEWS, frame_model, parse_views


def test_parse_views_keeps_order_and_drops_repeats():
    assert parse_views("top, FRONT,top") == ("top", "front")
    assert parse_views(["iso"]) == ("iso",)


@pytest.mark.parametrize("text", ["front,side", "", " , "])
def test_parse_views_names_the_problem(text):
    with pytest.raises(ValueError, match=r"unknown view .side.|no views"):
        parse_views(text)


@pytest.mark.parametrize("name", VIEWS)
def test_view_frames_are_right_handed_and_orthonormal(name):
    basis = VIEW_TABLE[name].basis()
    assert np.allclose(basis @ basis.T, np.eye(3))
    assert np.allclose(np.cross(basis[0], basis[1]), basis[2])


def test_one_framing_fits_every_view_with_the_margin():
    rng = np.random.default_rng(7)
    points = rng.normal(size=(200, 3)) * [0.3, 0.1, 0.05] + [1.0, -2.0, 0.5]
    framing = frame_model(points)
    widest = 0.0
    for view in VIEW_TABLE.values():
        basis = framing.view_basis(view)
        offsets = (points - framing.center) @ basis[:2].T
        widest = max(widest, np.abs(offsets).max())
        assert np.abs(offsets).max() <= framing.half_size * (1 - 2 * MARGIN) + 1e-12
    assert widest == pytest.approx(framing.half_size * (1 - 2 * MARGIN))


def test_a_point_cannot_be_framed():
    with pytest.raises(ValueError, match="no extent"):
        frame_model(np.zeros((4, 3)))
