"""The manifest: stage states, counts merged, later stages reset, the lock against lost updates,
and ``stage_run``/``stage_completed``, which the render, convert and validate stages keep their
entries with."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stages.dataset.manifest import (
    STAGES,
    mark_stage,
    new_manifest,
    read_manifest,
    stage_completed,
    stage_run,
    update_manifest,
    write_manifest,
)
from stages.protocol import StageCancelled
from tests.conftest import REPO_ROOT


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    folder = tmp_path / "set"
    folder.mkdir()
    manifest = new_manifest("set", counts={"models": 4, "train": 3})
    manifest["stages"]["extraction"] = "completed"
    write_manifest(folder, manifest)
    return folder


def test_a_new_manifest_has_every_stage_pending() -> None:
    manifest = new_manifest("x", seed=3)
    pending = dict.fromkeys(STAGES, "pending")
    assert manifest == {"name": "x", "counts": {}, "stages": pending, "seed": 3}


def test_mark_stage_sets_the_state_merges_counts_and_replaces_sections(dataset: Path) -> None:
    mark_stage(dataset, "rendering", "completed", counts={"images": 12}, render={"views": ["a"]})
    changed = mark_stage(dataset, "rendering", "completed", render={"views": ["b"]})
    assert changed == read_manifest(dataset)
    assert changed["stages"]["rendering"] == "completed"
    assert changed["stages"]["extraction"] == "completed"
    assert changed["counts"] == {"models": 4, "train": 3, "images": 12}
    assert changed["render"] == {"views": ["b"]}


def test_reset_later_sets_every_later_stage_pending(dataset: Path) -> None:
    for stage in ("rendering", "conversion", "validation"):
        mark_stage(dataset, stage, "completed")
    stages = mark_stage(dataset, "rendering", "completed", reset_later=True)["stages"]
    assert stages == {
        "extraction": "completed",
        "rendering": "completed",
        "conversion": "pending",
        "validation": "pending",
    }
    assert "reset_later" not in read_manifest(dataset)


def test_without_a_manifest_nothing_is_marked(tmp_path: Path) -> None:
    assert mark_stage(tmp_path, "rendering", "in_progress") is None
    assert mark_stage(tmp_path / "absent", "rendering", "failed") is None
    assert stage_completed(tmp_path, "rendering", counts={"images": 1}) is None
    with stage_run(tmp_path, "rendering"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_stage_run_marks_in_progress_then_the_block_completes(dataset: Path) -> None:
    with stage_run(dataset, "conversion"):
        assert read_manifest(dataset)["stages"]["conversion"] == "in_progress"
        (dataset / "train.json").write_text("[]\n")
        stage_completed(dataset, "conversion", counts={"conversations": 0}, reset_later=True)
    manifest = read_manifest(dataset)
    assert manifest["stages"]["conversion"] == "completed"
    assert manifest["counts"]["conversations"] == 0
    assert 0 < manifest["counts"]["bytes"] < (dataset / "dataset.json").stat().st_size + 100


@pytest.mark.parametrize("error", [StageCancelled(), RuntimeError("broke"), KeyboardInterrupt()])
def test_stage_run_marks_failed_however_the_block_raises(
    dataset: Path, error: BaseException
) -> None:
    with pytest.raises(type(error)), stage_run(dataset, "validation"):
        raise error
    manifest = read_manifest(dataset)
    assert manifest["stages"]["validation"] == "failed"
    assert manifest["counts"]["bytes"] > 0


WRITER = """
import sys, time
from pathlib import Path
from stages.dataset.manifest import update_manifest

dataset, name, times = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
(dataset / f"ready-{name}").touch()
while not (dataset / "go").exists():
    time.sleep(0.001)

def add(manifest):
    manifest["counts"]["total"] = manifest["counts"].get("total", 0) + 1
    manifest.setdefault(name, []).append(manifest["counts"]["total"])

for _ in range(times):
    update_manifest(dataset, add)
"""


def test_concurrent_writers_lose_no_update(dataset: Path) -> None:
    times = 150
    command = [sys.executable, "-c", WRITER, str(dataset)]
    writers = [subprocess.Popen([*command, name, str(times)], cwd=REPO_ROOT) for name in "ab"]
    try:
        deadline = time.monotonic() + 60
        while not all((dataset / f"ready-{n}").exists() for n in ("a", "b")):
            assert time.monotonic() < deadline, "the writers did not start"
            time.sleep(0.01)
        (dataset / "go").touch()
        assert [w.wait(timeout=120) for w in writers] == [0, 0]
    finally:
        for writer in writers:
            writer.kill()
    manifest = read_manifest(dataset)
    assert manifest["counts"]["total"] == 2 * times
    seen = sorted(manifest["a"] + manifest["b"])
    assert seen == list(range(1, 2 * times + 1)), "every update saw the one before it"
    assert json.loads((dataset / "dataset.json").read_text())["name"] == "set"


def test_update_manifest_returns_what_it_wrote(dataset: Path) -> None:
    written = update_manifest(dataset, lambda m: m.update(note="x"))
    assert written == read_manifest(dataset) and written["note"] == "x"
