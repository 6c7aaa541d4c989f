"""A real local Ray cluster for the executor tests: ``ray start --head`` with 2 CPUs, started
once per session, stopped at the end; the test process joins it as a driver too."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

RAY = str(Path(sys.executable).with_name("ray"))
STAGE_TIMEOUT_S = 300


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stage_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DEEPCAD_ROOT", "RAY_ADDRESS")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """The address (host:port) of a 2-CPU head node, and this process connected to it."""
    ray = pytest.importorskip("ray")
    port = free_port()
    env = {**stage_env(), "RAY_AUTH_MODE": "disabled"}  # a test cluster: no token to hand out
    subprocess.run(
        [RAY, "start", "--head", "--num-cpus", "2", "--port", str(port),
         "--node-ip-address", "127.0.0.1", "--disable-usage-stats",
         "--include-dashboard", "false"],
        check=True, capture_output=True, env=env, cwd=REPO_ROOT, timeout=120,
    )  # fmt: skip
    address = f"127.0.0.1:{port}"
    try:
        ray.init(address=address, log_to_driver=False)
        yield address
    finally:
        ray.shutdown()
        subprocess.run([RAY, "stop", "--force"], capture_output=True, env=env, timeout=120)


def wait_idle(ray: Any, timeout: float = 15.0) -> bool:
    """True once every CPU of the cluster is free again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ray.available_resources().get("CPU", 0) >= ray.cluster_resources().get("CPU", 0):
            return True
        time.sleep(0.2)
    return False


def run_stage(stage: str, *args: str) -> tuple[int, list[dict[str, Any]], str]:
    done = subprocess.run(
        [sys.executable, "-m", f"stages.{stage}", "--progress", "json", *args],
        capture_output=True, text=True, cwd=REPO_ROOT, env=stage_env(),
        timeout=STAGE_TIMEOUT_S,
    )  # fmt: skip
    events = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return done.returncode, events, done.stderr


def result_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    (result,) = [e for e in events if e["event"] == "result"]
    return result


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small extracted synthetic dataset (not rendered), made once; copy it before use."""
    folder = tmp_path_factory.mktemp("executors") / "base"
    code, _, stderr = run_stage(
        "extract", "--source", "synthetic", "--train-size", "16", "--val-size", "4",
        "--output", str(folder), "--workers", "2",
    )  # fmt: skip
    assert code == 0, stderr
    return folder


def copy_dataset(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }
