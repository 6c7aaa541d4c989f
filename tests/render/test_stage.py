"""The render stage: its CLI's errors, counting, resuming and the protocol events it emits."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stages.dataset.layout import folder_size
from stages.dataset.manifest import mark_stage, new_manifest, read_manifest, write_manifest
from stages.protocol import Reporter, UsageError
from stages.render.batch import render_dataset
from stages.render.images import is_valid_png
from stages.render.settings import RenderSettings
from tests.conftest import DEEPCAD_SAMPLES, REPO_ROOT
from tests.render.parts import load_part_file, plate_with_hole, write_part_dataset


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stages.render", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--views", "front,side"], "unknown view 'side'"),
        (["--resolution", "32"], "resolution 32 out of range 64..2048"),
        (["--resolution", "4096"], "out of range"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--time-limit", "0"], "time limit must be positive"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(tmp_path, extra, message):
    write_part_dataset(tmp_path, {"m": {"part": "box"}})
    done = run_cli("--input", str(tmp_path), "--progress", "json", *extra)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert events(done.stdout)[-1]["event"] == "done"


def test_empty_and_missing_inputs_are_refused(tmp_path):
    (tmp_path / "empty" / "cad_json").mkdir(parents=True)
    empty = run_cli("--input", str(tmp_path / "empty"), "--progress", "none")
    missing = run_cli("--input", str(tmp_path / "nowhere"), "--progress", "none")
    unparsable = run_cli("--input", str(tmp_path), "--resolution", "big")
    assert (empty.returncode, missing.returncode, unparsable.returncode) == (2, 2, 2)
    assert "no models" in empty.stderr
    assert "no cad_json/ folder" in missing.stderr
    assert len(unparsable.stderr.strip().splitlines()) == 1


def run_dataset(root: Path, **kwargs) -> tuple[dict, list[dict]]:
    """Run the stage body in-process with the test loader, ending as run_stage does."""
    out = io.StringIO()
    reporter = Reporter("render", "json", out=out)
    settings = kwargs.pop("settings", RenderSettings.checked(resolution=96))
    result = render_dataset(root, root, settings, reporter, load=load_part_file, **kwargs)
    reporter.result(result)
    return result, events(out.getvalue())


@pytest.mark.slow
def test_a_batch_counts_failures_by_reason_and_resumes(tmp_path, renderer):
    specs = {
        "plate": {"part": "plate_with_hole"},
        "bracket": {"part": "l_bracket"},
        "open": {"fail": "open_loop"},
        "empty": {"fail": "no_geometry"},
    }
    write_part_dataset(tmp_path, specs)
    settings = RenderSettings.checked(resolution=96, composite=True)
    first, log = run_dataset(tmp_path, settings=settings, workers=1)
    assert first["models"] == 4 and first["rendered"] == 2 and first["failed"] == 2
    assert first["failures_by_reason"] == {"no_geometry": 1, "open_loop": 1}
    assert first["images_rendered"] == 8  # front, top, right, composite for two models
    for name in ("plate_front", "plate_composite", "bracket_right"):
        assert is_valid_png(tmp_path / "images" / f"{name}.png", 96)
    warnings = [e for e in log if e["event"] == "warning"]
    assert sorted(w["reason"] for w in warnings) == ["no_geometry", "open_loop"]
    progress = [e for e in log if e["event"] == "progress"]
    assert progress[-1]["extra"]["images_rendered"] == 8
    assert log[0] == {"event": "start", "stage": "render", "total": 4, "unit": "models"}

    with Image.open(tmp_path / "images" / "plate_front.png") as stored:
        from_worker = np.asarray(stored.convert("RGB"))
    in_process = renderer.render(plate_with_hole(), ["front"], 96)["front"]
    assert np.array_equal(from_worker, in_process), "same pixels in any process"

    (tmp_path / "images" / "plate_top.png").write_bytes(b"half a file")
    second, _ = run_dataset(tmp_path, settings=settings, workers=1)
    assert second["skipped_existing"] == 1 and second["rendered"] == 1
    assert second["images_rendered"] == 1 and second["images_existing"] == 7
    assert is_valid_png(tmp_path / "images" / "plate_top.png", 96)


def test_only_the_requested_models_are_rendered(tmp_path):
    write_part_dataset(tmp_path, {"a": {"part": "box"}, "b": {"part": "l_bracket"}})
    result, _ = run_dataset(tmp_path, workers=1, only=["0000/b", "zzz"])
    assert result["rendered"] == 1 and result["failures_by_reason"] == {"not_found": 1}
    assert sorted(p.name for p in (tmp_path / "images").iterdir())[0].startswith("b_")
    with pytest.raises(UsageError, match="none of the 1 requested"):
        run_dataset(tmp_path, workers=1, only=["zzz"])


def test_synthetic_models_render_without_failures(tmp_path):
    synth = pytest.importorskip("stages.cad.synth")
    synth.write_dataset(tmp_path, 6, seed=3)
    reporter = Reporter("render", "none")
    settings = RenderSettings.checked(views="iso,front", resolution=128)
    result = render_dataset(tmp_path, tmp_path, settings, reporter, workers=1)
    assert (result["models"], result["rendered"], result["failed"]) == (6, 6, 0)
    assert result["images_rendered"] == 12


def sample_dataset(root: Path, names: list[str]) -> Path:
    """A dataset whose cad_json/ links to some of the shared real samples."""
    folder = root / "cad_json" / "0000"
    folder.mkdir(parents=True)
    for name in names:
        (folder / f"{name}.json").symlink_to(DEEPCAD_SAMPLES / f"{name}.json")
    return root


@pytest.mark.slow
def test_real_samples_through_the_cli(tmp_path, deepcad_samples):
    pytest.importorskip("stages.cad.solid")
    root = sample_dataset(tmp_path / "data", ["00000061", "00001616", "00000176"])
    (root / "cad_json" / "0000" / "broken.json").write_text("{not json")
    out = tmp_path / "out"
    done = run_cli(
        "--input", str(root), "--output", str(out), "--workers", "2", "--progress", "json"
    )
    assert done.returncode == 0, done.stderr
    log = events(done.stdout)
    result = next(e for e in log if e["event"] == "result")
    assert log[-1] == {"event": "done", "status": "completed"}
    assert result["rendered"] == 2 and result["failed"] == 2
    assert result["failures_by_reason"] == {"bad_json": 1, "no_geometry": 1}
    assert result["views"] == ["front", "top", "right"] and result["resolution"] == 512
    assert result["models_per_s"] > 0
    assert is_valid_png(out / "images" / "00001616_right.png", 512)


def test_single_model_mode_writes_and_reports_the_images(tmp_path, deepcad_samples):
    pytest.importorskip("stages.cad.solid")
    source = deepcad_samples / "00000061.json"
    done = run_cli(
        "--model",
        str(source),
        "--output",
        str(tmp_path),
        "--views",
        "iso,top",
        "--resolution",
        "128",
        "--composite",
        "--progress",
        "json",
    )
    assert done.returncode == 0, done.stderr
    result = next(e for e in events(done.stdout) if e["event"] == "result")
    assert result["model_id"] == "00000061"
    assert [image["view"] for image in result["images"]] == ["iso", "top", "composite"]
    for image in result["images"]:
        assert is_valid_png(Path(image["path"]), 128)
        assert Path(image["path"]).parent == tmp_path


def test_single_model_that_does_not_build_is_bad_input(tmp_path, deepcad_samples):
    pytest.importorskip("stages.cad.solid")
    done = run_cli(
        "--model",
        str(deepcad_samples / "00000176.json"),
        "--output",
        str(tmp_path),
        "--progress",
        "json",
    )
    assert done.returncode == 2
    log = events(done.stdout)
    assert [e["reason"] for e in log if e["event"] == "warning"] == ["no_geometry"]
    assert "no_geometry" in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_sigterm_cancels_the_run_and_stops_its_workers(tmp_path, deepcad_samples):
    pytest.importorskip("stages.cad.solid")
    psutil = pytest.importorskip("psutil")
    names = sorted(p.stem for p in deepcad_samples.glob("*.json"))
    root = sample_dataset(tmp_path / "data", names)
    write_manifest(root, new_manifest("data"))
    command = [
        sys.executable, "-m", "stages.render", "--input", str(root), "--workers", "1",
        "--views", ",".join(("front", "top", "right", "back", "left", "bottom", "iso")),
        "--resolution", "2048", "--progress", "json",
    ]  # fmt: skip
    stage = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        for line in stage.stdout:
            event = json.loads(line)
            if event["event"] == "progress" and event["current"] >= 1:
                break
        workers = psutil.Process(stage.pid).children(recursive=True)
        stage.terminate()
        rest = [json.loads(line) for line in stage.stdout]
        assert stage.wait(timeout=60) == 130
    finally:
        stage.kill()
    assert rest[-1] == {"event": "done", "status": "cancelled"}
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert workers and not alive, "no render worker outlives a cancelled stage"
    assert read_manifest(root)["stages"]["rendering"] == "failed"


@pytest.mark.slow
def test_the_stage_keeps_the_rendering_entry_of_the_manifest(tmp_path, deepcad_samples):
    pytest.importorskip("stages.cad.solid")
    root = sample_dataset(tmp_path / "data", ["00000061", "00001616"])
    write_manifest(root, new_manifest("data", counts={"models": 2}))
    for stage in ("extraction", "conversion", "validation"):
        mark_stage(root, stage, "completed")
    done = run_cli(
        "--input", str(root), "--views", "front,top", "--composite", "--resolution", "64",
        "--workers", "1", "--progress", "json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    manifest = read_manifest(root)
    assert manifest["stages"] == {
        "extraction": "completed",
        "rendering": "completed",
        "conversion": "pending",  # new images: the records and their check are out of date
        "validation": "pending",
    }
    assert manifest["render"] == {"views": ["front", "top"], "resolution": 64, "composite": True}
    assert manifest["counts"]["images"] == 6 and manifest["counts"]["models"] == 2
    measured, manifest_bytes = folder_size(root), (root / "dataset.json").stat().st_size
    assert measured - manifest_bytes < manifest["counts"]["bytes"] <= measured

    before = (root / "dataset.json").read_bytes()
    chosen = run_cli("--input", str(root), "--models", "00000061", "--resolution", "96")
    assert chosen.returncode == 0, chosen.stderr
    assert (root / "dataset.json").read_bytes() == before, "some models: not the dataset's render"


def test_a_failed_render_is_marked_failed(tmp_path):
    (tmp_path / "cad_json").mkdir()
    write_manifest(tmp_path, new_manifest("empty"))
    done = run_cli("--input", str(tmp_path), "--progress", "none")
    assert done.returncode == 2 and "no models" in done.stderr
    manifest = read_manifest(tmp_path)
    assert manifest["stages"]["rendering"] == "failed"
    assert manifest["counts"]["bytes"] > 0
    assert "render" not in manifest


def dataset_with_manifest(root: Path, names: list[str]) -> Path:
    """Real samples in a dataset folder with a manifest (so the stage keeps its entry)."""
    sample_dataset(root, names)
    write_manifest(root, new_manifest(root.name, counts={"models": len(names)}))
    return root


def failed_run(done: subprocess.CompletedProcess) -> tuple[dict, dict]:
    """The result and done events of a run that must have failed with exit code 1."""
    assert done.returncode == 1, done.stderr
    log = events(done.stdout)
    assert log[-1]["event"] == "done" and log[-1]["status"] == "failed"
    return next(e for e in log if e["event"] == "result"), log[-1]


def test_a_batch_whose_every_model_fails_ends_failed(tmp_path, deepcad_samples):
    pytest.importorskip("stages.cad.solid")
    root = dataset_with_manifest(tmp_path / "data", ["00000176"])  # no geometry
    (root / "cad_json" / "0000" / "broken.json").write_text("{not json")
    done = run_cli(
        "--input", str(root), "--resolution", "64", "--workers", "1", "--progress", "json"
    )
    result, end = failed_run(done)
    assert end["reason"] == "all_failed"
    assert end["error"] == "all_failed: all 2 models failed (bad_json 1, no_geometry 1)"
    assert result["failures_by_reason"] == {"bad_json": 1, "no_geometry": 1}
    assert read_manifest(root)["stages"]["rendering"] == "failed"


def test_one_broken_model_among_others_still_completes(tmp_path, deepcad_samples):
    pytest.importorskip("stages.cad.solid")
    root = dataset_with_manifest(tmp_path / "data", ["00000061", "00000176"])
    done = run_cli(
        "--input", str(root), "--resolution", "64", "--workers", "1", "--progress", "json"
    )
    assert done.returncode == 0, done.stderr
    assert events(done.stdout)[-1] == {"event": "done", "status": "completed"}
    assert read_manifest(root)["stages"]["rendering"] == "completed"
    skipped = json.loads((root / "skipped.json").read_text())
    assert skipped == {"rendering": {"00000176": "no_geometry"}}


def test_a_file_where_the_images_folder_belongs_ends_write_failed(tmp_path, deepcad_samples):
    pytest.importorskip("stages.cad.solid")
    root = dataset_with_manifest(tmp_path / "data", ["00000061"])
    (root / "images").write_text("not a folder")
    done = run_cli("--input", str(root), "--resolution", "64", "--progress", "json")
    assert done.returncode == 1, done.stderr
    end = events(done.stdout)[-1]
    assert (end["status"], end["reason"]) == ("failed", "write_failed")
    assert "cannot create" in end["error"]
    assert read_manifest(root)["stages"]["rendering"] == "failed"


def test_an_image_that_cannot_be_written_stops_the_run_as_write_failed(tmp_path, deepcad_samples):
    pytest.importorskip("stages.cad.solid")
    names = ["00000061", "00000073", "00001616"]  # rendered in this order
    root = dataset_with_manifest(tmp_path / "data", names)
    (root / "images" / "00000061_front.png").mkdir(parents=True)  # a folder where a file goes
    done = run_cli(
        "--input", str(root), "--views", "front", "--resolution", "64", "--workers", "1",
        "--progress", "json",
    )  # fmt: skip
    result, end = failed_run(done)
    assert end["reason"] == "write_failed"
    assert "could not write the images of 1 model to" in end["error"]
    assert "stopped after 1 of 3 models" in end["error"]
    assert result["failures_by_reason"] == {"write_failed": 1} and result["rendered"] == 0
    assert not (root / "images" / "00001616_front.png").exists(), "no model after the fault"
    assert read_manifest(root)["stages"]["rendering"] == "failed"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_images_folder_ends_write_failed(tmp_path, deepcad_samples):
    pytest.importorskip("stages.cad.solid")
    root = dataset_with_manifest(tmp_path / "data", ["00000061", "00001616"])
    images = root / "images"
    images.mkdir()
    images.chmod(0o555)
    try:
        done = run_cli("--input", str(root), "--resolution", "64", "--progress", "json")
    finally:
        images.chmod(0o755)
    result, end = failed_run(done)
    assert end["reason"] == "write_failed" and result["failures_by_reason"]["write_failed"] >= 1
    assert read_manifest(root)["stages"]["rendering"] == "failed"
