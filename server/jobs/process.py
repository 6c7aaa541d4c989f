"""The one way the server starts a stage process, and the ways it stops one.

Every stage runs as ``python -m <stages_package>.<name>`` with the repository on its path, no
shell, no standard input and its own process group (so a cancel reaches every worker it
started). Jobs and short request-time calls differ only in where stdout and stderr go. A
training job of several processes runs under ``python -m stages.torchrun`` (torch's launcher,
keeping every rank in the job's process group), which starts the stage once per rank.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from typing import IO

import psutil

from server.config import REPO_ROOT, Config
from stages.protocol.events import MAX_LINE_BYTES
from stages.torchrun import Launch, torchrun_command


def stage_module(config: Config, name: str) -> str:
    """``render`` -> ``stages.render`` (or the configured package, e.g. the tests' fakes)."""
    return f"{config.stages_package}.{name}"


def stage_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def stage_command(
    config: Config, name: str, args: list[str], launch: Launch | None = None
) -> list[str]:
    """``python -m <package>.<name> args``, or under torchrun when ``launch`` asks for several
    processes (they get the training kill grace to save their checkpoint when signalled)."""
    module = stage_module(config, name)
    if launch is not None and launch.distributed:
        return torchrun_command(module, args, launch, config.train_kill_grace_s)
    return [sys.executable, "-m", module, *args]


async def spawn_stage(
    config: Config,
    name: str,
    args: list[str],
    *,
    stderr: IO[bytes] | int = asyncio.subprocess.PIPE,
    stdin: int = asyncio.subprocess.DEVNULL,
    launch: Launch | None = None,
) -> asyncio.subprocess.Process:
    """Start stage ``name`` with ``args``; stdout is always a pipe of protocol lines. Only a
    long-lived worker that takes requests (the inference worker) gets a ``stdin`` pipe."""
    return await asyncio.create_subprocess_exec(
        *stage_command(config, name, args, launch),
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
        stdin=stdin,
        cwd=REPO_ROOT,
        env=stage_env(),
        start_new_session=True,
        limit=MAX_LINE_BYTES,
    )


def group_processes(pgid: int) -> list[psutil.Process]:
    """Every live process whose process group is ``pgid``."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess, PermissionError):
            continue
    return found


def kill_and_reap(processes: list[psutil.Process], timeout: float = 10.0) -> None:
    """SIGKILL each process and wait until it is gone (or a zombie nobody will reap)."""
    for proc in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(processes, timeout=timeout)


def signal_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
