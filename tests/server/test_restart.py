"""A real server process killed with SIGKILL and started again over the same var/ folder."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import psutil
import pytest

from stages.dataset.manifest import RENDERING
from stages.train.checkpoint import STATE_FILE, RunLayout, latest_checkpoint
from tests.conftest import REPO_ROOT
from tests.server.conftest import (
    TRAIN_CONFIG,
    TRAIN_STEPS,
    assert_resumed_at,
    install_converted_dataset,
    install_dataset,
    make_config,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(var: Path, port: int, *flags: str, **env: str) -> subprocess.Popen:
    """The real service on the fake stages; ``flags`` and ``env`` are added to its own."""
    env = dict(os.environ, FAKE_RATE="20", **env)
    return subprocess.Popen(
        [sys.executable, "-m", "server", "--port", str(port), "--var", str(var),
         "--stages-package", "tests.fake_stages", *flags],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def call(port: int, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def wait_healthy(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if call(port, "GET", "/health")[0] == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server did not start")


def test_sigkilled_server_leaves_interrupted_jobs_and_no_orphans(tmp_path):
    var, port = tmp_path / "var", free_port()
    server = start_server(var, port)
    try:
        wait_healthy(port)
        status, started = call(
            port,
            "POST",
            "/training/datasets/extract",
            {"source": "synthetic", "train_size": 10, "val_size": 2, "output_name": "r1"},
        )
        assert status == 202, started
        job_id = started["job_id"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            progress = call(port, "GET", f"/training/jobs/{job_id}/progress")[1]
            if progress["status"] == "running" and progress["progress"]["current"] > 3:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"job never ran: {progress}")
        stage = [
            p
            for p in psutil.Process(server.pid).children()
            if "fake_stages" in " ".join(p.cmdline())
        ]
        assert len(stage) == 1
        stage_pid = stage[0].pid
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        assert psutil.pid_exists(stage_pid)  # orphaned, still running

        port = free_port()
        server = start_server(var, port)
        wait_healthy(port)
        progress = call(port, "GET", f"/training/jobs/{job_id}/progress")[1]
        assert progress["status"] == "interrupted"
        assert "server stopped" in progress["error"]
        assert not psutil.pid_exists(stage_pid) or psutil.Process(stage_pid).status() == "zombie"
        listing = call(port, "GET", "/training/jobs?status=interrupted")[1]
        assert [j["job_id"] for j in listing["jobs"]] == [job_id]
        # The dataset never finished extracting: nothing that looks complete is listed.
        datasets = call(port, "GET", "/training/datasets")[1]["datasets"]
        assert all(d["status"] != "ready" for d in datasets)
        assert (
            call(port, "POST", f"/training/jobs/{job_id}/resume")[0] == 409
        )  # extract: start anew
    finally:
        server.kill()
        server.wait(10)


def wait_for(port: int, job_id: str, statuses: tuple[str, ...], timeout: float = 300) -> dict:
    """The job's progress once its status is one of ``statuses``."""
    deadline = time.monotonic() + timeout
    while True:
        progress = call(port, "GET", f"/training/jobs/{job_id}/progress")[1]
        if progress["status"] in statuses:
            return progress
        assert time.monotonic() < deadline, f"still {progress['status']}, wanted {statuses}"
        time.sleep(0.1)


def wait_for_path(path: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def stored_events(port: int, job_id: str) -> list[tuple[str, dict]]:
    """Every event of an ended job, read back through its SSE stream."""
    events, name = [], None
    url = f"http://127.0.0.1:{port}/training/jobs/{job_id}/events"
    with urllib.request.urlopen(url, timeout=60) as stream:
        for raw in stream:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:") and name:
                if name == "end":
                    break
                events.append((name, json.loads(line[5:].strip())))
                name = None
    return events


def test_queued_jobs_survive_a_restart_and_run_after_it(tmp_path):
    """One CPU slot: two converts wait behind a running extract when the server is killed;
    the next server marks the extract interrupted and runs the queued jobs, in order."""
    var, port = tmp_path / "var", free_port()
    for name in ("a", "b"):
        install_dataset(make_config(var), name, RENDERING)
    # The converts are queued behind the extract, so they outlive any sync wait: 202 at once.
    server = start_server(var, port, "--cpu-slots", "1", "--sync-wait", "0.1")
    try:
        wait_healthy(port)
        body = {"source": "synthetic", "train_size": 10, "val_size": 2, "output_name": "x"}
        status, started = call(port, "POST", "/training/datasets/extract", body)
        assert status == 202, started
        extract = started["job_id"]
        wait_for(port, extract, ("running",))
        queued = []
        for name in ("a", "b"):
            status, answer = call(port, "POST", f"/training/datasets/{name}/convert", {})
            assert status == 202, answer
            queued.append(answer["job_id"])
        listing = call(port, "GET", "/training/jobs?status=queued")[1]
        assert sorted(j["job_id"] for j in listing["jobs"]) == sorted(queued)
        server.send_signal(signal.SIGKILL)
        server.wait(10)

        port = free_port()
        server = start_server(var, port, "--cpu-slots", "1")
        wait_healthy(port)
        assert wait_for(port, extract, ("interrupted",), 60)["status"] == "interrupted"
        ended = [wait_for(port, job_id, ("completed", "failed"), 60) for job_id in queued]
        assert [e["status"] for e in ended] == ["completed", "completed"]
        first_end, second_start = ended[0]["finished_at"], ended[1]["started_at"]
        assert datetime.fromisoformat(first_end) <= datetime.fromisoformat(second_start)
    finally:
        server.kill()
        server.wait(10)


@pytest.mark.slow
def test_training_a_restart_interrupted_resumes_from_its_checkpoint(tmp_path):
    """The server stops while training is held after step 3: the stage saves a checkpoint at
    step 3 and the job is ``interrupted``; resumed on the next server it continues after
    step 3, repeats none, and completes the run."""
    var, port = tmp_path / "var", free_port()
    install_converted_dataset(make_config(var), "tr")
    held = tmp_path / "held"
    grace = ("--kill-grace", "120", "--train-kill-grace", "120")  # time to save, however slow
    hold = {"FAKE_TRAIN_HOLD_STEP": "3", "FAKE_TRAIN_HELD": str(held)}
    server = start_server(var, port, *grace, **hold)
    try:
        wait_healthy(port)
        body = {"dataset": "tr", "config": TRAIN_CONFIG}
        status, started = call(port, "POST", "/training/start", body)
        assert status == 202, started
        job_id = started["job_id"]
        wait_for_path(held)
        server.terminate()  # a restart: the server stops its jobs before it exits
        server.wait(180)

        port = free_port()
        server = start_server(var, port, *grace)
        wait_healthy(port)
        progress = call(port, "GET", f"/training/jobs/{job_id}/progress")[1]
        assert progress["status"] == "interrupted", progress
        checkpoint = latest_checkpoint(RunLayout(var / "checkpoints" / "tr" / job_id))
        assert checkpoint is not None
        assert json.loads((checkpoint / STATE_FILE).read_text())["step"] == 3
        status, resumed = call(port, "POST", f"/training/jobs/{job_id}/resume")
        assert status == 202, resumed
        assert wait_for(port, job_id, ("completed", "failed"))["status"] == "completed"
        assert_resumed_at(stored_events(port, job_id), 3)
        status = call(port, "GET", f"/training/{job_id}/status")[1]
        assert status["result"]["steps"] == status["progress"]["total_steps"] == TRAIN_STEPS
    finally:
        server.kill()
        server.wait(10)
