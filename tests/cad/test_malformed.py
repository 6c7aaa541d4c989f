"""Malformed input gives CadError with a reason, never another exception or a hang; the
``info`` command turns it into one JSON line and exit code 2."""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stages.cad.commands import info
from stages.cad.deepcad import MAX_FILE_BYTES, MAX_LOOP_CURVES, load_deepcad, parse_deepcad
from stages.cad.model import CadError
from stages.cad.solid import build_solid
from tests.conftest import DEEPCAD_SAMPLES

SAMPLE = DEEPCAD_SAMPLES / "00000330.json"  # lines, arcs, cut and join, negative extents


def sample() -> dict:
    return json.loads(SAMPLE.read_text())


def parse_and_build(data: Any) -> None:
    """Either a solid or a CadError; anything else escapes and fails the test."""
    try:
        build_solid(parse_deepcad(data, "m"))
    except CadError as err:
        assert err.reason and isinstance(err.reason, str)


def reason_of(data: Any) -> str:
    with pytest.raises(CadError) as err:
        build_solid(parse_deepcad(data, "m"))
    return err.value.reason


def key_paths(node: Any, prefix: tuple = ()) -> Iterator[tuple]:
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, value in items:
        yield (*prefix, key)
        yield from key_paths(value, (*prefix, key))


def at(data: Any, path: tuple) -> tuple[Any, Any]:
    for key in path[:-1]:
        data = data[key]
    return data, path[-1]


def curves_of(data: dict, kind: str) -> list[dict]:
    """Every curve of a type, in every sketch (profiles repeat shared curves)."""
    return [
        curve
        for entity in data["entities"].values()
        if entity["type"] == "Sketch"
        for profile in entity["profiles"].values()
        for loop in profile["loops"]
        for curve in loop["profile_curves"]
        if curve["type"] == kind
    ]


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_truncated_json(tmp_path: Path, fraction: float) -> None:
    raw = SAMPLE.read_bytes()
    cut = tmp_path / "cut.json"
    cut.write_bytes(raw[: int(len(raw) * fraction)])
    with pytest.raises(CadError) as err:
        load_deepcad(cut)
    assert err.value.reason == "bad_json"


@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe\x00garbage", b"[1, 2, 3]", b"null", b'"text"', b"[" * 100_000 + b"]" * 100_000],
    ids=["binary", "list", "null", "string", "deeply-nested"],
)
def test_not_a_cad_json(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(content)
    with pytest.raises(CadError) as err:
        load_deepcad(path)
    assert err.value.reason == "bad_json"


def test_missing_file_is_bad_json(tmp_path: Path) -> None:
    with pytest.raises(CadError) as err:
        load_deepcad(tmp_path / "absent.json")
    assert err.value.reason == "bad_json"


def test_50_megabyte_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    huge = tmp_path / "huge.json"
    with huge.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)  # sparse: costs no disk
    assert huge.stat().st_size > MAX_FILE_BYTES
    with pytest.raises(CadError) as err:
        load_deepcad(huge)
    assert err.value.reason == "too_large"


def test_every_missing_key_is_handled() -> None:
    data = sample()
    for path in key_paths(data):
        broken = copy.deepcopy(data)
        parent, key = at(broken, path)
        del parent[key]
        parse_and_build(broken)


def test_missing_geometry_keys_name_bad_json() -> None:
    for key in ("entities", "sequence"):
        broken = sample()
        del broken[key]
        assert reason_of(broken) == "bad_json"
    broken = sample()
    for curve in curves_of(broken, "Arc3D"):
        del curve["reference_vector"]
    assert reason_of(broken) == "bad_json"


def test_nan_coordinates() -> None:
    data = sample()
    for path in key_paths(data):
        parent, key = at(data, path)
        if isinstance(parent[key], float):
            broken = copy.deepcopy(data)
            parent_copy, _ = at(broken, path)
            parent_copy[key] = math.nan
            parse_and_build(broken)
    broken = sample()
    for curve in curves_of(broken, "Line3D"):
        curve["start_point"]["x"] = math.nan
    assert reason_of(broken) == "bad_json"


def test_nan_literal_in_file(tmp_path: Path) -> None:
    text = SAMPLE.read_text().replace('"x": 0.0', '"x": NaN', 1)
    assert "NaN" in text
    path = tmp_path / "nan.json"
    path.write_text(text)
    with pytest.raises(CadError) as err:
        load_deepcad(path)
    assert err.value.reason == "bad_json"


def test_zero_radius_circle() -> None:
    data = json.loads((DEEPCAD_SAMPLES / "00000144.json").read_text())
    for radius in (0.0, 1e-15):
        for curve in curves_of(data, "Circle3D"):
            curve["radius"] = radius
        assert reason_of(data) == "degenerate"


def minimal_model(curves: list[dict]) -> dict:
    return {
        "entities": {
            "S": {
                "type": "Sketch",
                "transform": {
                    "origin": {"x": 0.0, "y": 0.0, "z": 0.0},
                    "x_axis": {"x": 1.0, "y": 0.0, "z": 0.0},
                    "y_axis": {"x": 0.0, "y": 1.0, "z": 0.0},
                    "z_axis": {"x": 0.0, "y": 0.0, "z": 1.0},
                },
                "profiles": {"P": {"loops": [{"is_outer": True, "profile_curves": curves}]}},
            },
            "E": {
                "type": "ExtrudeFeature",
                "profiles": [{"sketch": "S", "profile": "P"}],
                "operation": "NewBodyFeatureOperation",
                "extent_type": "OneSideFeatureExtentType",
                "extent_one": {"distance": {"value": 0.01}},
                "extent_two": {"distance": {"value": 0.0}},
            },
        },
        "sequence": [
            {"index": 0, "type": "Sketch", "entity": "S"},
            {"index": 1, "type": "ExtrudeFeature", "entity": "E"},
        ],
    }


def polyline(*points: tuple[float, float]) -> list[dict]:
    return [
        {
            "type": "Line3D",
            "start_point": {"x": a[0], "y": a[1], "z": 0.0},
            "end_point": {"x": b[0], "y": b[1], "z": 0.0},
        }
        for a, b in itertools.pairwise(points)
    ]


def test_self_intersecting_loop() -> None:
    bow_tie = polyline((0, 0), (0.01, 0.01), (0.01, 0), (0, 0.01), (0, 0))
    assert reason_of(minimal_model(bow_tie)) == "self_intersecting"
    lopsided = polyline((0, 0), (0.02, 0.01), (0.02, 0), (0, 0.01), (0, 0))
    assert reason_of(minimal_model(lopsided)) == "self_intersecting"
    spike_back = polyline(
        (0, 0), (0.01, 0), (0.01, 0.01), (0.005, 0.01), (0.005, -0.01), (0.0, 0.01), (0, 0)
    )
    assert reason_of(minimal_model(spike_back)) == "self_intersecting"
    square = polyline((0, 0), (0.01, 0), (0.01, 0.01), (0, 0.01), (0, 0))
    build_solid(parse_deepcad(minimal_model(square), "m"))


def test_open_loop() -> None:
    open_square = polyline((0, 0), (0.01, 0), (0.01, 0.01), (0, 0.01))
    assert reason_of(minimal_model(open_square)) == "open_loop"


def test_huge_loop_is_refused_before_chaining() -> None:
    zigzag = [(i * 1e-4, (i % 2) * 1e-4) for i in range(MAX_LOOP_CURVES + 10)]
    assert reason_of(minimal_model(polyline(*zigzag))) == "too_complex"


def test_zero_depth_and_bad_planes() -> None:
    square = polyline((0, 0), (0.01, 0), (0.01, 0.01), (0, 0.01), (0, 0))
    flat = minimal_model(square)
    flat["entities"]["E"]["extent_one"]["distance"]["value"] = 0.0
    assert reason_of(flat) == "degenerate"
    for axis in ({"x": 0.0, "y": 0.0, "z": 0.0}, {"x": 0.0, "y": 0.0, "z": 1.0}):
        skewed = minimal_model(square)
        skewed["entities"]["S"]["transform"]["x_axis"] = axis
        assert reason_of(skewed) == "degenerate"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=5,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_replacements_never_crash(data: st.DataObject) -> None:
    model = sample()
    paths = list(key_paths(model))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        try:
            parent, key = at(model, path)
            parent[key] = data.draw(json_values)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier replacement removed this path
    parse_and_build(model)


@settings(max_examples=60, deadline=None)
@given(scale=st.floats(1e-300, 1e300))
def test_extreme_scales_never_crash(scale: float) -> None:
    model = sample()
    for path in key_paths(model):
        parent, key = at(model, path)
        if isinstance(parent[key], float) and key in ("x", "y", "value", "radius"):
            parent[key] *= scale
    parse_and_build(model)


def run_info(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    parser = argparse.ArgumentParser()
    info.add_arguments(parser)
    code = info.run(parser.parse_args([str(path)]))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    return code, json.loads(lines[0])


def test_info_prints_solid_facts(capsys: pytest.CaptureFixture[str]) -> None:
    code, facts = run_info(DEEPCAD_SAMPLES / "00000126.json", capsys)
    assert code == 0
    assert set(facts) == {"id", "volume", "bbox", "triangles", "watertight", "solids", "key"}
    assert facts["id"] == "00000126" and facts["solids"] == 2 and facts["watertight"] is True
    assert facts["volume"] == pytest.approx(0.0001254, rel=5e-3)
    assert len(facts["bbox"]) == 2 and all(lo < hi for lo, hi in zip(*facts["bbox"], strict=True))


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("truncated.json", SAMPLE.read_bytes()[:100], "bad_json"),
        ("00000176.json", (DEEPCAD_SAMPLES / "00000176.json").read_bytes(), "no_geometry"),
        ("absent.json", None, "bad_json"),
    ],
)
def test_info_bad_model_exits_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: bytes | None,
    reason: str,
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    code, error = run_info(path, capsys)
    assert code == 2
    assert error["error"] == reason and isinstance(error["detail"], str)
