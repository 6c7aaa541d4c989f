"""The DeepCAD parser: every real sample, and each quirk of the format in a small hand-made file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from stages.cad.deepcad import load_deepcad, parse_deepcad
from stages.cad.model import Arc, CadError, Circle, ExtentType, Line, Operation
from tests.conftest import DEEPCAD_SAMPLES

SAMPLES = sorted(DEEPCAD_SAMPLES.glob("*.json"))


def line(x0: float, y0: float, x1: float, y1: float) -> dict:
    return {
        "type": "Line3D",
        "start_point": {"x": x0, "y": y0, "z": 0.0},
        "end_point": {"x": x1, "y": y1, "z": 0.0},
    }


def arc(start, end, center, radius, sweep, reference) -> dict:
    return {
        "type": "Arc3D",
        "start_point": {"x": start[0], "y": start[1], "z": 0.0},
        "end_point": {"x": end[0], "y": end[1], "z": 0.0},
        "center_point": {"x": center[0], "y": center[1], "z": 0.0},
        "radius": radius,
        "start_angle": 0.0,
        "end_angle": sweep,
        "reference_vector": {"x": reference[0], "y": reference[1], "z": 0.0},
        "normal": {"x": 0.0, "y": 0.0, "z": 1.0},
    }


def circle(cx: float, cy: float, r: float) -> dict:
    return {"type": "Circle3D", "center_point": {"x": cx, "y": cy, "z": 0.0}, "radius": r}


def square(size: float = 0.01) -> list[dict]:
    return [
        line(0, 0, size, 0),
        line(size, 0, size, size),
        line(size, size, 0, size),
        line(0, size, 0, 0),
    ]


def sketch(profiles: dict[str, list[list[dict]]], z_axis=(0.0, 0.0, 1.0), x_axis=(1.0, 0.0, 0.0)):
    def vec(v):
        return {"x": v[0], "y": v[1], "z": v[2]}

    return {
        "type": "Sketch",
        "transform": {
            "origin": vec((0.0, 0.0, 0.0)),
            "x_axis": vec(x_axis),
            "y_axis": vec((9.0, 9.0, 9.0)),  # ignored: y is z cross x
            "z_axis": vec(z_axis),
        },
        "profiles": {
            pid: {"loops": [{"is_outer": True, "profile_curves": c} for c in loops]}
            for pid, loops in profiles.items()
        },
    }


def extrude(
    refs, operation="NewBodyFeatureOperation", extent="OneSideFeatureExtentType", d1=0.01, d2=0.0
):
    return {
        "type": "ExtrudeFeature",
        "profiles": [{"sketch": s, "profile": p} for s, p in refs],
        "operation": operation,
        "extent_type": extent,
        "start_extent": {"type": "ProfilePlaneStartDefinition"},
        "extent_one": {"distance": {"value": d1}, "taper_angle": {"value": 0.0}},
        "extent_two": {"distance": {"value": d2}, "taper_angle": {"value": 0.0}},
    }


def model(entities: dict, order: list[str]) -> dict:
    sequence = [
        {"index": i, "type": entities[eid]["type"], "entity": eid} for i, eid in enumerate(order)
    ]
    return {"entities": entities, "properties": {}, "sequence": sequence[::-1]}


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_real_sample_parses_into_closed_chains(path: Path) -> None:
    parsed = load_deepcad(path)
    assert parsed.id == path.stem
    for ex in parsed.extrudes:
        assert ex.profile.loops
        for loop in ex.profile.loops:
            curves = loop.curves
            if isinstance(curves[0], Circle):
                assert len(curves) == 1
                continue
            for current, following in zip(curves, curves[1:] + curves[:1], strict=True):
                assert math.dist(current.end, following.start) < 1e-9


def test_real_arcs_keep_file_points_and_sweep_reaches_end() -> None:
    raw_points = set()
    for path in SAMPLES:
        for entity in json.loads(path.read_text())["entities"].values():
            for profile in (
                entity.get("profiles", {}).values() if entity["type"] == "Sketch" else []
            ):
                for loop in profile["loops"]:
                    for c in loop["profile_curves"]:
                        if c["type"] == "Arc3D":
                            for key in ("start_point", "end_point"):
                                raw_points.add((c[key]["x"], c[key]["y"]))
    arcs = [
        c
        for path in SAMPLES
        for ex in load_deepcad(path).extrudes
        for loop in ex.profile.loops
        for c in loop.curves
        if isinstance(c, Arc)
    ]
    assert len(arcs) > 20
    assert any(a.sweep < 0 for a in arcs) and any(a.sweep > 0 for a in arcs)
    for a in arcs:
        assert a.start in raw_points and a.end in raw_points
        angle = a.start_angle + a.sweep
        reached = (
            a.center[0] + a.radius * math.cos(angle),
            a.center[1] + a.radius * math.sin(angle),
        )
        assert math.dist(reached, a.end) < 1e-5 * a.radius


def test_model_without_profiles_parses_to_no_extrudes() -> None:
    assert load_deepcad(DEEPCAD_SAMPLES / "00000176.json").extrudes == ()


def test_first_extrude_may_be_a_join_and_multi_profile_splits() -> None:
    parsed = load_deepcad(DEEPCAD_SAMPLES / "00000073.json")
    assert [e.operation for e in parsed.extrudes] == [Operation.JOIN] * 3
    assert all(e.extent_one < 0 for e in parsed.extrudes)


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        ("NewBodyFeatureOperation", [Operation.NEW_BODY, Operation.JOIN, Operation.JOIN]),
        ("CutFeatureOperation", [Operation.CUT] * 3),
        ("IntersectFeatureOperation", [Operation.INTERSECT] * 3),
    ],
)
def test_multi_profile_operation_rule(operation: str, expected: list[Operation]) -> None:
    entities = {
        "S": sketch({"a": [square()], "b": [square(0.02)], "c": [square(0.03)]}),
        "E": extrude([("S", "a"), ("S", "b"), ("S", "c")], operation=operation),
    }
    parsed = parse_deepcad(model(entities, ["S", "E"]), "m")
    assert [e.operation for e in parsed.extrudes] == expected
    assert [e.profile.loops[0].curves[1].end[0] for e in parsed.extrudes] == [0.01, 0.02, 0.03]


def test_unordered_reversed_curves_are_chained() -> None:
    shuffled = [
        line(0.01, 0, 0, 0),
        line(0, 0.01, 0.01, 0.01),
        line(0.01, 0.01, 0.01, 0),
        line(0, 0, 0, 0.01),
    ]
    entities = {"S": sketch({"p": [shuffled]}), "E": extrude([("S", "p")])}
    (ex,) = parse_deepcad(model(entities, ["S", "E"]), "m").extrudes
    curves = ex.profile.loops[0].curves
    assert curves[0] == Line((0.01, 0.0), (0.0, 0.0))
    for current, following in zip(curves, curves[1:] + curves[:1], strict=True):
        assert current.end == following.start


def test_zero_length_lines_are_skipped() -> None:
    curves = [*square(), line(0.01, 0.01, 0.01, 0.01)]
    entities = {"S": sketch({"p": [curves]}), "E": extrude([("S", "p")])}
    (ex,) = parse_deepcad(model(entities, ["S", "E"]), "m").extrudes
    assert len(ex.profile.loops[0].curves) == 4


def test_arc_whose_ccw_start_is_end_point_gets_negative_sweep() -> None:
    # Half disk: arc from (0.01, 0) over the top to (-0.01, 0), stored backwards.
    stored_backwards = arc((0.01, 0), (-0.01, 0), (0, 0), 0.01, math.pi, reference=(1.0, 0.0))
    stored_backwards["start_point"], stored_backwards["end_point"] = (
        stored_backwards["end_point"],
        stored_backwards["start_point"],
    )
    entities = {
        "S": sketch({"p": [[stored_backwards, line(-0.01, 0, 0.01, 0)]]}),
        "E": extrude([("S", "p")]),
    }
    (ex,) = parse_deepcad(model(entities, ["S", "E"]), "m").extrudes
    first = ex.profile.loops[0].curves[0]
    assert isinstance(first, Arc)
    assert first.start == (-0.01, 0.0) and first.end == (0.01, 0.0)
    assert first.sweep == pytest.approx(-math.pi)
    assert first.mid[1] == pytest.approx(0.01)


def test_extents_and_plane() -> None:
    entities = {
        "S": sketch({"p": [square()]}, z_axis=(0.0, -1.0, 0.0), x_axis=(1.0, 0.0, 0.0)),
        "E1": extrude([("S", "p")], extent="SymmetricFeatureExtentType", d1=0.02, d2=0.5),
        "E2": extrude([("S", "p")], extent="TwoSidesFeatureExtentType", d1=0.02, d2=0.03),
        "U": sketch({"q": [square()]}),  # unused sketch
    }
    parsed = parse_deepcad(model(entities, ["S", "E1", "U", "E2"]), "m")
    sym, two = parsed.extrudes
    assert (sym.extent_type, sym.extent_one, sym.extent_two) == (ExtentType.SYMMETRIC, 0.02, 0.0)
    assert (two.extent_type, two.extent_one, two.extent_two) == (ExtentType.TWO_SIDES, 0.02, 0.03)
    assert sym.plane.y_axis == pytest.approx((0.0, 0.0, 1.0))
    assert sym.plane.normal == (0.0, -1.0, 0.0)


def test_crlf_and_trailing_spaces_load(tmp_path: Path) -> None:
    source = DEEPCAD_SAMPLES / "00000061.json"
    text = json.dumps(json.loads(source.read_text()), indent=1).replace("\n", " \r\n")
    copy = tmp_path / "00000061.json"
    copy.write_bytes(text.encode())
    assert load_deepcad(copy) == load_deepcad(source)


def test_unknown_curve_type_is_reported() -> None:
    entities = {
        "S": sketch({"p": [[{"type": "BSplineCurve3D"}]]}),
        "E": extrude([("S", "p")]),
    }
    with pytest.raises(CadError) as err:
        parse_deepcad(model(entities, ["S", "E"]), "m")
    assert err.value.reason == "unsupported_curve"
