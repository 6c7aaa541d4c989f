"""The synthetic DeepCAD-format generator: schema, quirks, gates, booleans, layout and CLI."""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stages.cad.commands import synth as synth_command
from stages.cad.deepcad import parse_deepcad
from stages.cad.key import geometric_key
from stages.cad.model import (
    CadError,
    CadModel,
    Circle,
    ExtentType,
    Extrude,
    Loop,
    Operation,
    Profile,
    SketchPlane,
)
from stages.cad.solid import build_solid
from stages.cad.synth import draw_design, generate_model, generate_models, generator, write_dataset
from stages.cad.synth.deepcad_json import design_to_json
from stages.cad.synth.deepcad_layout import write_json_atomic
from stages.cad.synth.quirks import reshape
from stages.cad.synth.shapes import Grid, rectangle
from stages.cad.synth.slivers import find_sliver
from stages.cad.synth.variety import DEFAULT_QUIRKS, DEFAULT_VARIETY, FAMILIES
from tests.conftest import REPO_ROOT

SEEDS = st.integers(min_value=0, max_value=2**40)
PROPERTY = settings(max_examples=15, deadline=None, derandomize=True)


# -- helpers -----------------------------------------------------------------------------------


def _schema(data: dict) -> set[tuple]:
    """Every (kind, sorted keys) shape in a cad_json: entities, curves, extents, transforms."""
    shapes = {("top", tuple(sorted(data))), ("properties", tuple(sorted(data["properties"])))}
    shapes.add(("box", tuple(sorted(data["properties"]["bounding_box"]))))
    for item in data["sequence"]:
        shapes.add(("sequence", tuple(sorted(item))))
    for entity in data["entities"].values():
        shapes.add((entity["type"], tuple(sorted(entity))))
        if entity["type"] == "ExtrudeFeature":
            for name in ("extent_one", "extent_two"):
                shapes.add((name, tuple(sorted(entity[name]))))
                shapes.add((name + ".distance", tuple(sorted(entity[name]["distance"]))))
            continue
        shapes.add(("transform", tuple(sorted(entity["transform"]))))
        for profile in entity["profiles"].values():
            shapes.add(("profile", tuple(sorted(profile))))
            for loop in profile["loops"]:
                shapes.add(("loop", tuple(sorted(loop))))
                for curve in loop["profile_curves"]:
                    shapes.add((curve["type"], tuple(sorted(curve))))
    return shapes


def _volume(extrudes: tuple[Extrude, ...]) -> float:
    try:
        return build_solid(CadModel("part", extrudes)).volume
    except CadError as exc:
        if exc.reason == "empty_solid":
            return 0.0
        raise


def _gated(seed: int) -> tuple[str, dict]:
    return next(generate_models(1, seed))


@pytest.fixture
def restore_sigterm():
    """The CLI installs the stage protocol's SIGTERM handler; put pytest's back afterwards."""
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


# -- the written JSON ----------------------------------------------------------------------------


def test_same_schema_as_real_deepcad_files(deepcad_samples: Path) -> None:
    real: set[tuple] = set()
    for path in sorted(deepcad_samples.glob("*.json")):
        real |= _schema(json.loads(path.read_text()))
    generated: set[tuple] = set()
    for seed in range(60):
        data = generate_model(seed, f"{seed:08d}")
        parse_deepcad(data, "m")
        generated |= _schema(data)
    assert generated <= real
    curve_shapes = {s for s in real if s[0] in ("Line3D", "Arc3D", "Circle3D")}
    assert curve_shapes <= generated


def test_generate_model_is_deterministic_by_seed() -> None:
    first = json.dumps(generate_model(1234, "00001234"))
    assert json.dumps(generate_model(1234, "00001234")) == first
    assert json.dumps(generate_model(1235, "00001235")) != first


def _quirks_seen(data: dict) -> set[str]:
    seen: set[str] = set()
    entities = data["entities"]
    used = set()
    for entity in entities.values():
        if entity["type"] != "ExtrudeFeature":
            continue
        used |= {ref["sketch"] for ref in entity["profiles"]}
        seen.add(entity["operation"])
        seen.add(entity["extent_type"])
        if len(entity["profiles"]) > 1:
            seen.add("multi_profile")
        if entity["extent_one"]["distance"]["value"] < 0:
            seen.add("negative_extent")
    for sketch_id, sketch in entities.items():
        if sketch["type"] != "Sketch":
            continue
        if sketch_id not in used:
            seen.add("unused_sketch")
        transform = sketch["transform"]
        if any(abs(v) > 1e-12 for v in transform["origin"].values()):
            seen.add("offset_plane")
        axes = (transform[k] for k in ("x_axis", "y_axis", "z_axis"))
        if any(sum(abs(v) > 1e-9 for v in axis.values()) > 1 for axis in axes):
            seen.add("rotated_plane")
        for profile in sketch["profiles"].values():
            seen |= _loop_quirks(profile["loops"])
    return seen


def _loop_quirks(loops: list[dict]) -> set[str]:
    seen: set[str] = set()

    def box_area(loop: dict) -> float:
        points = []
        for c in loop["profile_curves"]:
            if c["type"] == "Circle3D":
                r, p = c["radius"], c["center_point"]
                points += [(p["x"] - r, p["y"] - r), (p["x"] + r, p["y"] + r)]
            else:
                points += [(c[k]["x"], c[k]["y"]) for k in ("start_point", "end_point")]
        xs, ys = zip(*points, strict=True)
        return (max(xs) - min(xs)) * (max(ys) - min(ys))

    if len(loops) > 1 and box_area(loops[0]) < max(box_area(loop) for loop in loops):
        seen.add("outer_not_first")
    for loop in loops:
        curves = loop["profile_curves"]
        for a, b in itertools.pairwise(curves):
            if "end_point" in a and "start_point" in b and a["end_point"] != b["start_point"]:
                seen.add("unchained_curves")
        for c in curves:
            if c["type"] == "Arc3D":
                ref, centre, r = c["reference_vector"], c["center_point"], c["radius"]
                ccw_start = (centre["x"] + r * ref["x"], centre["y"] + r * ref["y"])
                stored_end = (c["end_point"]["x"], c["end_point"]["y"])
                if math.dist(ccw_start, stored_end) < 1e-9:
                    seen.add("arc_starts_at_end_point")
    return seen


def test_generated_files_carry_every_deepcad_quirk_and_feature() -> None:
    seen: Counter[str] = Counter()
    for seed in range(300):
        seen.update(_quirks_seen(generate_model(seed, "m")))
    expected = {
        "NewBodyFeatureOperation",
        "JoinFeatureOperation",
        "CutFeatureOperation",
        "IntersectFeatureOperation",
        "OneSideFeatureExtentType",
        "SymmetricFeatureExtentType",
        "TwoSidesFeatureExtentType",
        "multi_profile",
        "negative_extent",
        "unused_sketch",
        "offset_plane",
        "rotated_plane",
        "outer_not_first",
        "unchained_curves",
        "arc_starts_at_end_point",
    }
    assert expected <= set(seen), f"never seen: {expected - set(seen)}"


def test_designs_stay_within_answer_and_extrude_budgets() -> None:
    rng = random.Random(5)
    designs = [draw_design(rng, DEFAULT_VARIETY) for _ in range(300)]
    assert all(d.estimated_code_chars() <= DEFAULT_VARIETY.max_code_chars for d in designs)
    profiles = [d.used_profiles() for d in designs]
    assert max(len(used) for used in profiles) <= 10  # DeepCAD's vectoriser limits
    assert max(len(p.loops) for used in profiles for p in used) <= 6
    assert max(len(lp.curves) for used in profiles for p in used for lp in p.loops) <= 14
    small = sum(1 <= len(d.features) <= 6 for d in designs)
    assert small >= 0.9 * len(designs)
    assert {d.family for d in designs} == set(FAMILIES)


def test_variety_chooses_families_and_sizes() -> None:
    variety = replace(DEFAULT_VARIETY.with_families(["ring", "link"]), size_range=(0.1, 0.1))
    rng = random.Random(2)
    designs = [draw_design(rng, variety) for _ in range(40)]
    assert {d.family for d in designs} == {"ring", "link"}
    for seed in range(10):
        solid = build_solid(parse_deepcad(generate_model(seed, "m", variety), "m"))
        assert 0.05 <= float((solid.bbox[1] - solid.bbox[0]).max()) <= 0.2
    with pytest.raises(ValueError, match="teapot"):
        DEFAULT_VARIETY.with_families(["teapot"])


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_builds_watertight_parts(family: str) -> None:
    variety = DEFAULT_VARIETY.with_families([family])
    built = 0
    for seed in range(6):
        data = generate_model(seed, "m", variety)
        try:
            solid = build_solid(parse_deepcad(data, "m"))
        except CadError as exc:
            pytest.fail(f"{family} seed {seed}: {exc}")
        assert solid.watertight and solid.volume > 0
        size = float((solid.bbox[1] - solid.bbox[0]).max())
        assert 0.001 < size < 1.0
        built += 1
    assert built == 6


# -- gated models: hypothesis properties ---------------------------------------------------------


@PROPERTY
@given(seed=SEEDS)
def test_gated_models_are_single_watertight_solids(seed: int) -> None:
    model_id, data = _gated(seed)
    assert model_id == "00000001"
    solid = build_solid(parse_deepcad(data, model_id))
    assert solid.watertight
    assert solid.volume > 0
    assert solid.num_solids == 1
    assert find_sliver(parse_deepcad(data, model_id), DEFAULT_VARIETY.min_feature_share) is None


@PROPERTY
@given(seed=SEEDS)
def test_boolean_volumes_follow_set_algebra(seed: int) -> None:
    """Join: between the larger part and the sum; cut never adds; intersect keeps the lesser."""
    model = parse_deepcad(_gated(seed)[1], "m")
    before = _volume(model.extrudes[:1])
    for k in range(1, len(model.extrudes)):
        extrude = model.extrudes[k]
        part = _volume(model.extrudes[k : k + 1])
        after = _volume(model.extrudes[: k + 1])
        slack = 1e-7 * (before + part)
        if extrude.operation in (Operation.JOIN, Operation.NEW_BODY):
            assert max(before, part) - slack <= after <= before + part + slack
        elif extrude.operation == Operation.CUT:
            assert after <= before + slack
        else:
            assert after <= min(before, part) + slack
        before = after


@PROPERTY
@given(seed=SEEDS)
def test_reexpressing_a_design_keeps_its_solid(seed: int) -> None:
    """Turning, flipping, shifting and spinning planes and every file quirk: same solid."""
    rng = random.Random(seed)
    family = rng.choice(sorted(FAMILIES))
    grid = Grid.draw(rng, DEFAULT_VARIETY.size_range, DEFAULT_VARIETY.inch_share)
    design = FAMILIES[family](rng, grid)
    always = dict.fromkeys(DEFAULT_QUIRKS, 1.0)
    never = dict.fromkeys(DEFAULT_QUIRKS, 0.0)
    plain = build_solid(parse_deepcad(design_to_json(design, rng, never), "plain"))
    shaped = reshape(design, rng, always, grid.quantum)
    quirky = build_solid(parse_deepcad(design_to_json(shaped, rng, always), "quirky"))
    assert quirky.volume == pytest.approx(plain.volume, rel=2e-3)
    size = float((plain.bbox[1] - plain.bbox[0]).max())
    extents = sorted(plain.bbox[1] - plain.bbox[0])  # the part may lie on another axis
    assert sorted(quirky.bbox[1] - quirky.bbox[0]) == pytest.approx(extents, abs=2e-3 * size)


def test_generate_models_is_deterministic_and_prefix_stable() -> None:
    first = list(generate_models(5, 11))
    assert [model_id for model_id, _ in first] == [f"{i:08d}" for i in range(1, 6)]
    assert json.dumps(list(generate_models(5, 11))) == json.dumps(first)
    assert json.dumps(list(generate_models(3, 11))) == json.dumps(first[:3])
    assert json.dumps(list(generate_models(5, 11, workers=2))) == json.dumps(first)
    assert json.dumps(list(generate_models(5, 12))) != json.dumps(first)


def test_generated_models_never_share_a_geometric_key() -> None:
    rejected: Counter[str] = Counter()
    models = list(generate_models(40, 3, on_reject=lambda _, e: rejected.update([e.reason])))
    keys = [geometric_key(build_solid(parse_deepcad(data, mid))) for mid, data in models]
    assert len(set(keys)) == len(keys) == 40
    assert sum(rejected.values()) < 40  # the gates refuse a minority


def test_duplicates_are_rejected_by_key(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = iter(["a", "a", "b", "a", "c"])
    monkeypatch.setattr(generator, "generate_model", lambda seed, model_id, variety: {"seed": seed})
    monkeypatch.setattr(generator, "gate_model", lambda data, model_id, variety: next(keys))
    rejected: list[tuple[str, str]] = []
    models = list(generate_models(3, 0, on_reject=lambda c, e: rejected.append((c, e.reason))))
    assert [model_id for model_id, _ in models] == ["00000001", "00000002", "00000003"]
    assert [data["seed"] for _, data in models] == [
        generator.candidate_seed(0, i) for i in (0, 2, 4)
    ]
    assert rejected == [("candidate-1", "duplicate"), ("candidate-3", "duplicate")]


def test_a_variety_that_yields_nothing_stops_with_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(data: dict, model_id: str, variety: object) -> str:
        raise CadError("sliver", "always")

    monkeypatch.setattr(generator, "generate_model", lambda seed, model_id, variety: {})
    monkeypatch.setattr(generator, "gate_model", refuse)
    rejected: Counter[str] = Counter()
    with pytest.raises(CadError) as caught:
        list(generate_models(2, 0, on_reject=lambda _, e: rejected.update([e.reason])))
    assert caught.value.reason == "synth_yield"
    assert rejected["sliver"] == generator.MAX_CANDIDATES_PER_MODEL * 2 + 100


# -- the sliver gate -----------------------------------------------------------------------------

TOP = SketchPlane((0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))


def _plate(*holes: Loop, thickness: float = 0.005) -> Extrude:
    outline = rectangle(0.0, 0.0, 0.1, 0.06)
    return Extrude(
        TOP, Profile((outline, *holes)), Operation.NEW_BODY, ExtentType.ONE_SIDE, thickness
    )


def _hole(x: float, y: float, r: float) -> Loop:
    return Loop((Circle((x, y), r),))


def test_sliver_gate_accepts_clean_parts() -> None:
    at_top = SketchPlane((0.0, 0.0, 0.005), TOP.x_axis, TOP.y_axis, TOP.normal)
    boss = Extrude(
        at_top, Profile((_hole(0.05, 0.03, 0.01),)), Operation.JOIN, ExtentType.ONE_SIDE, 0.01
    )
    model = CadModel("clean", (_plate(_hole(0.02, 0.02, 0.005)), boss))
    assert find_sliver(model, 0.01) is None


@pytest.mark.parametrize(
    "extrudes",
    [
        pytest.param((_plate(_hole(0.0055, 0.03, 0.005)),), id="hole_near_edge"),
        pytest.param((_plate(thickness=0.0004),), id="shallow_extrude"),
        pytest.param(
            (
                _plate(),
                Extrude(
                    SketchPlane((0.0, 0.0, 0.005), TOP.x_axis, TOP.y_axis, TOP.normal),
                    Profile((rectangle(0.02, 0.02, 0.08, 0.04),)),
                    Operation.CUT,
                    ExtentType.ONE_SIDE,
                    -0.0047,
                ),
            ),
            id="pocket_leaves_thin_floor",
        ),
        pytest.param(
            (_plate(_hole(0.03, 0.03, 0.01), _hole(0.0505, 0.03, 0.01)),), id="holes_nearly_touch"
        ),
        pytest.param(
            (
                _plate(),
                Extrude(
                    TOP,
                    Profile((rectangle(0.1, 0.0, 0.1003, 0.06),)),
                    Operation.JOIN,
                    ExtentType.ONE_SIDE,
                    0.005,
                ),
            ),
            id="thin_strip",
        ),
    ],
)
def test_sliver_gate_finds_thin_features(extrudes: tuple[Extrude, ...]) -> None:
    assert find_sliver(CadModel("sliver", extrudes), 0.01) is not None


# -- the dataset on disk -------------------------------------------------------------------------


def test_write_dataset_layout_and_split(tmp_path: Path) -> None:
    counts = write_dataset(tmp_path, 12, 3, split=(0.75, 0.125, 0.125))
    assert counts["models"] == 12
    assert (counts["train"], counts["validation"], counts["test"]) == (9, 2, 1)
    files = sorted(tmp_path.glob("cad_json/*/*.json"))
    assert [f.relative_to(tmp_path).as_posix() for f in files] == [
        f"cad_json/0000/{i:08d}.json" for i in range(1, 13)
    ]
    assert not [p for p in tmp_path.rglob(".*")]  # no temporary files left behind
    split = json.loads((tmp_path / "train_val_test_split.json").read_text())
    assert set(split) == {"train", "validation", "test"}
    listed = [entry for part in split.values() for entry in part]
    assert sorted(listed) == [f"0000/{i:08d}" for i in range(1, 13)]
    for name, part in split.items():
        assert part == sorted(part) and len(part) == counts[name]
    for path in files:
        parse_deepcad(json.loads(path.read_text()), path.stem)


def test_write_dataset_rejects_a_bad_split(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        write_dataset(tmp_path, 3, 0, split=(0.5, 0.5, 0.5))
    assert not any(tmp_path.iterdir())


def test_atomic_write_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "cad_json" / "0000" / "00000001.json"
    with pytest.raises(ValueError):
        write_json_atomic(target, {"value": float("nan")})
    assert not target.exists()
    write_json_atomic(target, {"value": 1})
    with pytest.raises(ValueError):
        write_json_atomic(target, {"value": float("inf")})
    assert json.loads(target.read_text()) == {"value": 1}
    assert [p.name for p in target.parent.iterdir()] == ["00000001.json"]


# -- the CLI -------------------------------------------------------------------------------------


def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    synth_command.add_arguments(parser)
    return synth_command.run(parser.parse_args(argv))


def test_cli_writes_a_dataset_and_reports_protocol_events(
    tmp_path: Path, capsys: pytest.CaptureFixture, restore_sigterm: None
) -> None:
    out = tmp_path / "synth"
    argv = ["--count", "6", "--seed", "2", "--out", str(out), "--workers", "1"]
    assert _run_cli([*argv, "--progress", "json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[0] == {"event": "start", "stage": "synth", "total": 6, "unit": "models"}
    assert events[-1] == {"event": "done", "status": "completed"}
    result = next(e for e in events if e["event"] == "result")
    assert result["models"] == 6 and result["train"] + result["validation"] + result["test"] == 6
    warnings = [e for e in events if e["event"] == "warning"]
    assert len(warnings) == sum(result["rejected"].values())
    assert len(list(out.glob("cad_json/0000/*.json"))) == 6
    assert _run_cli([*argv, "--progress", "none"]) == 2  # a dataset is there already
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize(
    "bad",
    [
        ["--count", "0"],
        ["--count", "3", "--split", "0.5,0.5,0.5"],
        ["--count", "3", "--split", "a,b,c"],
        ["--count", "3", "--families", "plate,teapot"],
        ["--count", "3", "--workers", "-1"],
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture, restore_sigterm: None, bad: list[str]
) -> None:
    assert _run_cli([*bad, "--out", str(tmp_path / "x"), "--progress", "none"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith("synth: ")
    assert not (tmp_path / "x").exists()


def _stage(*argv: str) -> list[str]:
    return [sys.executable, "-m", "stages.cad", "synth", *argv]


@pytest.mark.slow
def test_cli_runs_through_the_stages_cad_dispatcher(tmp_path: Path) -> None:
    out = tmp_path / "via_module"
    done = subprocess.run(
        _stage("--count", "3", "--seed", "4", "--out", str(out), "--progress", "json"),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e["event"] for e in events][-2:] == ["result", "done"]
    assert (out / "train_val_test_split.json").is_file()
    bad = subprocess.run(
        _stage("--count", "-3", "--out", str(tmp_path / "bad"), "--progress", "none"),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == "synth: --count must be at least 1, got -3"


def test_cancelled_run_leaves_only_whole_files(tmp_path: Path) -> None:
    """SIGTERM to the stage's process group (as the server cancels): no partial files."""
    out = tmp_path / "cancelled"
    argv = ("--count", "5000", "--out", str(out), "--workers", "2", "--progress", "json")
    process = subprocess.Popen(
        _stage(*argv),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if json.loads(line).get("current", 0) >= 2:
            break
    os.killpg(process.pid, signal.SIGTERM)
    rest, _ = process.communicate(timeout=60)
    assert process.returncode == 130
    assert json.loads(rest.splitlines()[-1]) == {"event": "done", "status": "cancelled"}
    assert not (out / "train_val_test_split.json").exists()
    written = list(out.rglob("*"))
    assert not [p for p in written if p.name.startswith(".")]
    for path in (p for p in written if p.suffix == ".json"):
        parse_deepcad(json.loads(path.read_text()), path.stem)
