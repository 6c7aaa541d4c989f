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
from pathlib import Path

import psutil

from tests.conftest import REPO_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(var: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ, FAKE_RATE="20")
    return subprocess.Popen(
        [sys.executable, "-m", "server", "--port", str(port), "--var", str(var),
         "--stages-package", "tests.fake_stages"],
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
