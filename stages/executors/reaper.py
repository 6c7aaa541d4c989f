"""``python -m stages.executors.reaper``: ends what is left of a private Ray instance once its
driver (the stage) is gone, however it went.

A private instance's processes (GCS, raylet, monitors, and the raylet's DashboardAgent and
RuntimeEnvAgent) run in a process group of their own, out of the stage's, so a cancel's
SIGTERM reaches the driver alone and it shuts the instance down itself. If the driver is
SIGKILLed instead, Ray's fate sharing ends the GCS and the raylet (and with it the workers),
but not the two agents: they notice the raylet's death at once, then spend a minute trying
to report it to the dead GCS before they exit. This process leads that group and reads a pipe
whose other end only the driver holds: at end of file (the driver closed its instance, or was
killed) it kills every other process of the group and waits until they are gone.

``Reaper`` is the driver's side: start it before ``ray.init``, put Ray's processes in its
group (``pgid``), close it after ``ray.shutdown``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import psutil

REAP_WAIT_S = 5.0
ROUNDS = 3  # a process forked while the group was being killed is found in the next round
CLOSE_WAIT_S = 2 * ROUNDS * REAP_WAIT_S
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # where ``stages`` is importable from


def group_members(pgid: int, exclude: int) -> list[psutil.Process]:
    """The live processes of process group ``pgid``, but ``exclude``."""
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if (
                process.pid != exclude
                and os.getpgid(process.pid) == pgid
                and process.status() != psutil.STATUS_ZOMBIE
            ):
                found.append(process)
    return found


def reap_group() -> None:
    """SIGKILL every other process of this process's group and wait until it is gone."""
    me, pgid = os.getpid(), os.getpgrp()
    for _ in range(ROUNDS):
        members = group_members(pgid, me)
        if not members:
            return
        for process in members:
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(members, timeout=REAP_WAIT_S)


class Reaper:
    """The reaper process for one private instance, in a new process group it leads."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "stages.executors.reaper"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            process_group=0,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")])
                ),
            },
        )

    @property
    def pgid(self) -> int:
        return self.process.pid

    def close(self) -> None:
        """Let the reaper end the group's stragglers, and wait (bounded) until it has."""
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=CLOSE_WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def main() -> int:
    sys.stdin.buffer.read()  # returns once the driver's end of the pipe is closed
    reap_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
