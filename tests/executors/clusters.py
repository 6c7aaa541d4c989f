"""Private Ray clusters for the tests that break one: a head that is killed mid-run, a second
node that cannot see the dataset folder.

Each node is ``ray start --block``, a child of the test in a session of its own, with its
own Ray temp dir, so it is stopped by killing its processes by pid: never with ``ray stop``,
which would stop every Ray node on the machine, the session's cluster too. A node can run in
a mount namespace of its own where a tmpfs hides a folder (``hidden``): to its workers that
folder is empty, as a dataset folder is to a node that does not mount the shared storage.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

from tests.conftest import REPO_ROOT
from tests.executors.conftest import RAY, free_port, stage_env

START_TIMEOUT_S = 120
STOP_TIMEOUT_S = 30
# In a new mount namespace: a tmpfs over "$1", then the command.
HIDE_FOLDER = 'mount -t tmpfs cadvlm-hidden "$1" && shift && exec "$@"'
NODES_UP = """
import sys, time
import ray
ray.init(address=sys.argv[1], log_to_driver=False)
while sum(1 for node in ray.nodes() if node["Alive"]) < int(sys.argv[2]):
    time.sleep(0.1)
"""


def ray_temp_dir() -> Path:
    """A short folder for a cluster's Ray files (its socket paths must stay under 108 bytes)."""
    return Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))


def cluster_env(temp_dir: Path) -> dict[str, str]:
    return {**stage_env(), "RAY_TMPDIR": str(temp_dir), "RAY_AUTH_MODE": "disabled"}


class RayNode:
    """One ``ray start --block`` node, optionally with ``hidden`` hidden from its processes."""

    def __init__(self, args: list[str], temp_dir: Path, hidden: Path | None = None) -> None:
        prefix = []
        if hidden is not None:
            prefix = ["unshare", "--mount", "--propagation", "private",
                      "sh", "-c", HIDE_FOLDER, "sh", str(hidden)]  # fmt: skip
        self.log = temp_dir / f"node-{len(list(temp_dir.glob('node-*.log')))}.log"
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [*prefix, RAY, "start", "--block", "--disable-usage-stats",
                 "--node-ip-address", "127.0.0.1", *args],
                stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
                env=cluster_env(temp_dir), start_new_session=True,
            )  # fmt: skip

    def processes(self) -> list[psutil.Process]:
        """This node's processes now: ``ray start`` and everything it started."""
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> list[psutil.Process]:
        """SIGKILL every process of the node (its group, and workers, which have groups of
        their own) and wait until they are gone; returns those still alive (none)."""
        processes = self.processes()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        for process in processes:
            with contextlib.suppress(psutil.Error):
                process.kill()
        self.process.wait(timeout=STOP_TIMEOUT_S)
        _, alive = psutil.wait_procs(processes, timeout=STOP_TIMEOUT_S)
        return alive


class RayCluster:
    """A head (and any further nodes) on this machine, all 127.0.0.1, in one temp dir."""

    def __init__(self, head_args: list[str]) -> None:
        self.temp_dir = ray_temp_dir()
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes = [
            RayNode(["--head", "--port", str(self.port), "--include-dashboard", "false",
                     *head_args], self.temp_dir)
        ]  # fmt: skip

    def add_node(self, args: list[str], hidden: Path | None = None) -> None:
        self.nodes.append(RayNode(["--address", self.address, *args], self.temp_dir, hidden))

    def wait_until_up(self) -> None:
        """Return once every node has joined (a driver sees them all alive)."""
        subprocess.run(
            [sys.executable, "-c", NODES_UP, self.address, str(len(self.nodes))],
            check=True, capture_output=True, cwd=REPO_ROOT, env=cluster_env(self.temp_dir),
            timeout=START_TIMEOUT_S,
        )  # fmt: skip

    def kill(self) -> list[psutil.Process]:
        """Kill every node, the head last; returns the processes still alive (none)."""
        alive = []
        for node in reversed(self.nodes):
            alive += node.kill()
        return alive

    def close(self) -> list[psutil.Process]:
        """``kill``, then remove the cluster's Ray files."""
        alive = self.kill()
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        return alive
