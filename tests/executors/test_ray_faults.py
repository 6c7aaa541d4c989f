"""A Ray cluster that dies under a running stage, and a stage killed under its private instance.

Both hold the render stage on a model that never finishes (``{"hold": MARKER}``, drawn by the
tests' parts through ``tests.executors.held_render``): MARKER appears once a Ray worker is
drawing it, so the test acts while the stage certainly runs, without racing a clock.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import REPO_ROOT
from tests.executors.clusters import RayCluster, cluster_env, ray_temp_dir
from tests.render.parts import write_part_dataset

HELD_RENDER = ["--views", "front", "--resolution", "64", "--workers", "1", "--time-limit", "600"]
# The stage's own bound: the watch gives up on a GCS refusing connections after 10 s, the
# pools then close, all within Ray's reconnect limit (30 s), past which Ray ends the driver.
STAGE_END_S = 60
WAIT_S = 120
GONE_S = 30  # killed processes are reaped in seconds; Ray's agents alone linger for 60 s


class HeldRender:
    """The render stage on a dataset of one held model, in a session of its own."""

    def __init__(self, work: Path, env: dict[str, str], *ray_args: str) -> None:
        self.held = work / "held"
        write_part_dataset(work / "ds", {"held": {"hold": str(self.held)}})
        self.stderr = work / "stage.err"
        with open(self.stderr, "w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.executors.held_render", "--progress", "json",
                 "--input", str(work / "ds"), *HELD_RENDER, "--executor", "ray", *ray_args],
                stdout=subprocess.PIPE, stderr=err, text=True, cwd=REPO_ROOT, env=env,
                start_new_session=True,
            )  # fmt: skip

    def wait_held(self) -> None:
        """Return once a Ray worker is drawing the held model."""
        deadline = time.monotonic() + WAIT_S
        while not self.held.exists():
            assert self.process.poll() is None, self.stderr.read_text()[-3000:]
            assert time.monotonic() < deadline, "the held model was never drawn"
            time.sleep(0.05)

    def finish(self) -> tuple[int, list[dict[str, Any]]]:
        """The exit code and events, once the stage has ended on its own."""
        assert self.process.stdout is not None
        code = self.process.wait(timeout=STAGE_END_S)  # its few lines fit in the pipe
        out = self.process.stdout.read()
        return code, [json.loads(line) for line in out.splitlines() if line.strip()]

    def kill(self) -> None:
        """SIGKILL the stage's group, should a test end while it still runs."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=WAIT_S)


@pytest.mark.slow  # waits out the watch's 10 s of a GCS refusing connections
def test_a_cluster_that_dies_mid_run_is_a_failed_run_with_one_line(tmp_path):
    """The stage's cluster (a private head, not the session's) is killed while a model is
    being drawn: the stage notices, closes its pool and ends ``ray_unavailable`` with exit
    code 1 and its ``done`` event, as an unreachable address does, not killed by Ray."""
    pytest.importorskip("ray")
    cluster = RayCluster(["--num-cpus", "1"])
    stage = None
    try:
        cluster.wait_until_up()
        env = {k: v for k, v in cluster_env(cluster.temp_dir).items() if k != "RAY_TMPDIR"}
        stage = HeldRender(tmp_path, env, "--ray-address", cluster.address)
        stage.wait_held()
        assert cluster.kill() == []
        code, events = stage.finish()
    finally:
        cluster.close()
        if stage is not None:
            stage.kill()
    stderr = stage.stderr.read_text()
    assert code == 1, stderr[-3000:]
    assert [e["event"] for e in events] == ["start", "progress", "done"], events
    done = events[-1]
    assert done["status"] == "failed" and done["reason"] == "ray_unavailable", done
    assert "\n" not in done["error"] and "went away mid-run" in done["error"]
    assert "Traceback" not in stderr and "will terminate" not in stderr, stderr[-3000:]


def ray_processes_using(folder: Path) -> list[psutil.Process]:
    """Live processes whose command line or open files are under ``folder`` (a Ray temp dir:
    Ray's native processes name it on their command line, its Python ones log into it)."""
    found = []
    for process in psutil.process_iter():
        try:
            uses = str(folder) in " ".join(process.cmdline()) or any(
                f.path.startswith(str(folder)) for f in process.open_files()
            )
            if uses and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except psutil.Error:
            continue
    return found


def test_a_sigkilled_stage_leaves_nothing_of_its_private_instance(tmp_path):
    """SIGKILL to the stage's process group while its private instance works (a cancel's last
    resort, a dead server's clean-up) ends every process of that instance: the driver's
    fate sharing takes the GCS and raylet, the reaper the raylet's two agents."""
    pytest.importorskip("ray")
    temp_dir = ray_temp_dir()
    stage = HeldRender(tmp_path, cluster_env(temp_dir))
    instance: list[psutil.Process] = []
    try:
        stage.wait_held()
        instance = psutil.Process(stage.process.pid).children(recursive=True)
        names = {p.name() for p in instance}
        assert {"gcs_server", "raylet", "ray::DashboardAgent", "ray::RuntimeEnvAgent"} <= names
    finally:
        stage.kill()  # SIGKILL to its process group, as the service's last resort
    try:
        _, alive = psutil.wait_procs(instance, timeout=GONE_S)
        assert alive == [], [(p.pid, p.name()) for p in alive]
        assert ray_processes_using(temp_dir) == []
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
