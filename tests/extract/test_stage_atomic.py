"""A stage killed mid-run leaves no folder that looks like a dataset: after SIGKILL only a
hidden partial folder that the next run removes, after SIGTERM (a cancel) nothing at all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.extract.roots import copies_root
from tests.extract.stage_runs import extract_command, read_split, run_extract, stage_env


@pytest.fixture(scope="module")
def big_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Links enough models that an extract takes seconds, long enough to be interrupted."""
    return copies_root(tmp_path_factory.mktemp("big") / "root", train=3000, val=20)


def start_and_interrupt(root: Path, output: Path, sig: signal.Signals) -> tuple[int, list[dict]]:
    """Start an extract, send ``sig`` once it has chosen a model, return (exit code, events)."""
    command = extract_command(
        "--source", "deepcad", "--root", str(root), "--train-size", "2500",
        "--val-size", "2", "--output", str(output), "--workers", "2",
    )  # fmt: skip
    proc = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=stage_env(),
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    events = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            events.append(json.loads(line))
            if events[-1]["event"] == "progress" and events[-1]["current"] >= 1:
                break
        else:
            raise AssertionError("the stage ended before it made progress")
        if sig == signal.SIGKILL:
            os.killpg(proc.pid, sig)  # the stage and its workers, as a crash would
        else:
            proc.send_signal(sig)
        events += [json.loads(line) for line in proc.stdout]
    finally:
        proc.wait(timeout=60)
    return proc.returncode, events


@pytest.mark.slow
def test_sigkill_leaves_only_a_partial_folder_the_next_run_removes(
    big_root: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    output = data / "killed"
    returncode, _ = start_and_interrupt(big_root, output, signal.SIGKILL)
    assert returncode == -signal.SIGKILL
    assert not output.exists()
    leftovers = list(data.iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".killed.partial-")
    assert not (leftovers[0] / "dataset.json").exists()

    run = run_extract(
        "--source", "deepcad", "--root", str(big_root), "--train-size", "3", "--val-size", "2",
        "--output", str(output),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert len(read_split(output)["train"]) == 3
    assert [p.name for p in data.iterdir()] == ["killed"]


def test_sigterm_cancels_and_cleans_up(big_root: Path, tmp_path: Path) -> None:
    returncode, events = start_and_interrupt(big_root, tmp_path / "cancelled", signal.SIGTERM)
    assert returncode == 130
    assert events[-1] == {"event": "done", "status": "cancelled"}
    assert list(tmp_path.iterdir()) == []
