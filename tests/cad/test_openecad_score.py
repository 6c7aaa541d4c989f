"""Scores of generated code against a reference: exact IoU, normalised Chamfer, counts."""

from __future__ import annotations

import pytest

from stages.cad.model import CadError
from stages.cad.openecad.score import score_code, summarize
from tests.conftest import OPENECAD_GOLDEN


def box(x0: float, x1: float, height: float, width: float = 5.0) -> str:
    """A box [x0, x1] x [0, width] x [0, height] in millimetres, as OpenECAD code."""
    return f"""\
SketchPlane0 = add_sketchplane(origin= [0., 0., 0.], normal= [0., 0., 1.], x_axis= [1., 0., 0.])
Loops0 = []
Curves0_0 = []
Line0_0_0 = add_line(start= [{x0}, 0.], end= [{x1}, 0.])
Line0_0_1 = add_line(start= [{x1}, 0.], end= [{x1}, {width}])
Line0_0_2 = add_line(start= [{x1}, {width}], end= [{x0}, {width}])
Line0_0_3 = add_line(start= [{x0}, {width}], end= [{x0}, 0.])
Loop0_0 = add_loop(Curves0_0)
Profile0 = add_profile(Loops0)
Sketch0 = add_sketch(sketch_plane= SketchPlane0, profile= Profile0)
Extrude0 = add_extrude(sketch= Sketch0, operation= 0, type= 0, extent_one= {height}, extent_two= 0.)
"""


def test_identical_code_scores_perfectly() -> None:
    code = (OPENECAD_GOLDEN / "00005081.py").read_text()
    scores = score_code(code, code)
    assert scores["invalid"] is False
    assert scores["iou"] == pytest.approx(1.0)
    assert scores["chamfer"] == pytest.approx(0.0, abs=1e-12)
    assert scores["curve_accuracy"] == scores["loop_accuracy"] == 1.0


def test_iou_is_exact_for_normalised_boxes() -> None:
    # each box is centred and scaled by 1/10 on its own (the shift is normalised away): both
    # span x [0, 1] and y [0.25, 0.75], one z [0.4, 0.6], the other z [0.3, 0.7]
    scores = score_code(box(5.0, 15.0, 2.0), box(0.0, 10.0, 4.0))
    assert scores["iou"] == pytest.approx(0.2 / 0.4, rel=1e-6)
    assert scores["chamfer"] > 0.0


def test_chamfer_is_measured_in_each_shapes_unit_cube() -> None:
    small = score_code(box(0.0, 10.0, 3.0), box(0.0, 10.0, 2.0))["chamfer"]
    large = score_code(box(0.0, 100.0, 30.0, 50.0), box(0.0, 100.0, 20.0, 50.0))["chamfer"]
    assert small > 0.0
    assert large == pytest.approx(small, rel=1e-6)


def test_counts_drive_curve_and_loop_accuracy() -> None:
    reference = box(0.0, 10.0, 2.0)
    arc = reference.replace(
        "Line0_0_1 = add_line(start= [10.0, 0.], end= [10.0, 5.0])",
        "Arc0_0_1 = add_arc(start= [10.0, 0.], end= [10.0, 5.0], mid= [12.5, 2.5])",
    )
    scores = score_code(arc, reference)
    assert scores["counts"]["generated"]["arcs"] == 1
    assert scores["curve_accuracy"] == 0.0
    assert scores["loop_accuracy"] == 1.0
    assert 0.0 < scores["iou"] < 1.0


def test_code_that_does_not_parse_or_build_is_invalid() -> None:
    reference = box(0.0, 10.0, 2.0)
    broken = score_code("Extrude0 = add_extrude(", reference)
    assert broken["invalid"] is True
    assert "syntax error" in broken["error"]
    assert broken["iou"] is None and broken["chamfer"] is None
    flat = score_code(box(0.0, 10.0, 0.0), reference)
    assert flat["invalid"] is True
    assert flat["loop_accuracy"] == 1.0


def test_generated_answers_are_unwrapped() -> None:
    reference = box(0.0, 10.0, 2.0)
    answer = "Of course, here are the codes:\n```python\n" + reference + "```"
    assert score_code(answer, reference)["iou"] == pytest.approx(1.0)


def test_a_broken_reference_is_an_error() -> None:
    with pytest.raises(CadError):
        score_code(box(0.0, 10.0, 2.0), "nonsense(")


def test_summary_gives_invalid_ratio_means_and_medians() -> None:
    scores = [
        {"invalid": False, "iou": 1.0, "chamfer": 0.0, "curve_accuracy": 1.0, "loop_accuracy": 1.0},
        {"invalid": False, "iou": 0.5, "chamfer": 2.0, "curve_accuracy": 0.0, "loop_accuracy": 1.0},
        {"invalid": False, "iou": 0.0, "chamfer": 7.0, "curve_accuracy": 1.0, "loop_accuracy": 0.0},
        {
            "invalid": True,
            "iou": None,
            "chamfer": None,
            "curve_accuracy": 0.0,
            "loop_accuracy": 0.0,
        },
    ]
    summary = summarize(scores)
    assert summary["count"] == 4
    assert summary["invalid_ratio"] == 0.25
    assert summary["iou"] == {"mean": 0.5, "median": 0.5, "count": 3}
    assert summary["chamfer"] == {"mean": 3.0, "median": 2.0, "count": 3}
    assert summary["curve_accuracy"]["mean"] == 0.5
    assert summary["loop_accuracy"]["median"] == 0.5
    assert summarize([])["invalid_ratio"] is None
