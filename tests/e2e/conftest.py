"""A real service process on a free port over a temporary var/ folder, real stages."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Service:
    var: Path
    port: int
    deepcad_root: Path | None = None
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [sys.executable, "-m", "server", "--port", str(self.port), "--var", str(self.var)]
        cmd += ["--workers", "2"]
        if self.deepcad_root:
            cmd += ["--deepcad-root", str(self.deepcad_root)]
        log = open(self.var.parent / f"server-{self.port}.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            cmd, cwd=REPO_ROOT, stdout=log, stderr=log, env=dict(os.environ)
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2):
                    return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError("the service exited during start-up") from None
                time.sleep(0.1)
        raise RuntimeError("the service did not start")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    var = tmp_path / "var"
    var.mkdir()
    svc = Service(var=var, port=free_port())
    yield svc
    svc.stop()
