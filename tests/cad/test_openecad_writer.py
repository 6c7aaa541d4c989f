"""The writer must reproduce OpenECAD's converter byte for byte on every real sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from stages.cad.deepcad import load_deepcad
from stages.cad.model import (
    CadModel,
    ExtentType,
    Extrude,
    Line,
    Loop,
    Operation,
    Profile,
    SketchPlane,
)
from stages.cad.openecad import parse_code, write_code
from tests.conftest import DEEPCAD_SAMPLES, OPENECAD_GOLDEN

SAMPLES = sorted(DEEPCAD_SAMPLES.glob("*.json"))


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_code_equals_openecads_golden_output(sample: Path) -> None:
    golden = (OPENECAD_GOLDEN / f"{sample.stem}.py").read_bytes().decode("ascii")
    assert write_code(load_deepcad(sample)) == golden


def test_samples_cover_every_plane_form() -> None:
    """The goldens exercise absolute planes and every relative form the writer can choose."""
    codes = "".join(write_code(load_deepcad(sample)) for sample in SAMPLES)
    for form in ('type = "sameplane"', 'type = "extent_one"', 'type= "line"', "reverse = True"):
        assert form in codes
    assert len(SAMPLES) == 15


def test_model_without_extrudes_is_the_empty_program() -> None:
    assert write_code(CadModel(id="empty", extrudes=())) == ""


def plate(plane: SketchPlane, extent_one: float, operation: Operation) -> Extrude:
    square = Loop(
        (
            Line((0.0, 0.0), (0.01, 0.0)),
            Line((0.01, 0.0), (0.01, 0.01)),
            Line((0.01, 0.01), (0.0, 0.01)),
            Line((0.0, 0.01), (0.0, 0.0)),
        )
    )
    return Extrude(plane, Profile((square,)), operation, ExtentType.ONE_SIDE, extent_one)


TOP = SketchPlane((0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
LIFTED = SketchPlane((0.0, 0.0, 0.005), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))


def test_plane_on_an_extent_face_is_written_relative_to_it() -> None:
    model = CadModel(
        "m", (plate(TOP, 0.005, Operation.NEW_BODY), plate(LIFTED, 0.002, Operation.JOIN))
    )
    assert 'Extrude0, origin = [0., 0.], type = "extent_one")' in write_code(model)


def test_negative_extent_is_not_mistaken_for_the_face_on_the_other_side() -> None:
    """OpenECAD compares the distance without its sign and would write ``extent_one`` here,
    which its own reader places at z = -5 mm; the plane is at z = +5 mm."""
    model = CadModel(
        "m", (plate(TOP, -0.005, Operation.NEW_BODY), plate(LIFTED, 0.002, Operation.JOIN))
    )
    code = write_code(model)
    assert "add_sketchplane_ref" not in code
    assert "origin= [0., 0., 5.], normal= [0., 0., 1.]" in code


def test_normal_with_negative_x_is_written_as_it_is() -> None:
    """OpenECAD's polar round trip would print this plane mirrored, as normal [1, 0, 0]."""
    facing_back = SketchPlane((0.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, -1.0), (-1.0, 0.0, 0.0))
    code = write_code(CadModel("m", (plate(facing_back, 0.003, Operation.NEW_BODY),)))
    assert "normal= [-1.,  0.,  0.], x_axis= [0., 1., 0.]" in code
    plane = parse_code(code).extrudes[0].plane
    assert plane.normal == pytest.approx((-1.0, 0.0, 0.0))
    assert plane.y_axis == pytest.approx((0.0, 0.0, -1.0))
