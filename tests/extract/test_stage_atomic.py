"""A stage killed mid-run leaves no folder that looks like a dataset, and the next run cleans
up after it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from tests.conftest import REPO_ROOT
from tests.extract.roots import copies_root
from tests.extract.stage_runs import extract_command, read_split, run_extract, stage_env


def test_sigkill_mid_run_leaves_nothing_complete(tmp_path: Path) -> None:
    root = copies_root(tmp_path / "root", train=3000, val=20)
    data = tmp_path / "data"
    output = data / "killed"
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
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            event = json.loads(line)
            if event["event"] == "progress" and event["current"] >= 1:
                break
        else:
            raise AssertionError("the stage ended before it made progress")
        os.killpg(proc.pid, signal.SIGKILL)  # the stage and its workers, as a crash would
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not output.exists()
    leftovers = list(data.iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".killed.partial-")
    assert not (leftovers[0] / "dataset.json").exists()

    run = run_extract(
        "--source", "deepcad", "--root", str(root), "--train-size", "3", "--val-size", "2",
        "--output", str(output),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert len(read_split(output)["train"]) == 3
    assert [p.name for p in data.iterdir()] == ["killed"]
