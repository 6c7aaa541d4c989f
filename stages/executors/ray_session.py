"""Connecting the stage (the one Ray driver) to Ray, with bounded waits and one-line errors.

With no address a private instance is started for this run, sized to the stage's workers,
and shut down when the pool closes (a reaper, ``reaper.py``, ends what is left of it should
the stage be killed); an address is checked with a plain TCP connection first
(``CONNECT_TIMEOUT_S``), so an unreachable cluster is a failed run in seconds, not a hang. A
cluster that goes away mid-run is noticed by the pools' waits (``watch.py``) and is a
one-line ``ray_unavailable`` failure too. When Ray is already connected in this process (a
test, a notebook) that connection is used and left open.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import psutil

from stages.executors.reaper import Reaper
from stages.executors.watch import RAY_UNAVAILABLE, RECONNECT_S, RECONNECT_VARIABLE, ClusterWatch
from stages.protocol import StageFailed

CONNECT_TIMEOUT_S = 5.0
PRIVATE_OBJECT_STORE_BYTES = 256 * 1024 * 1024  # outcomes are small; images go to storage
CANCEL_WAIT_S = 5.0  # how long closing a pool waits for cancelled tasks to be gone
WAIT_SLICE_S = 0.2  # the longest a wait holds back a signal (a cancel)


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise StageFailed(RAY_UNAVAILABLE, "the ray executor needs the ray package") from exc
    return ray


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """StageFailed unless ``host:port`` accepts a TCP connection within ``timeout``."""
    if address in ("auto", "local") or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise StageFailed(RAY_UNAVAILABLE, f"the Ray address {address!r} is not host:port")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise StageFailed(
            RAY_UNAVAILABLE,
            f"cannot reach the Ray cluster at {address} within {timeout:.0f} s "
            f"({exc.strerror or exc})",
        ) from exc


class RaySession:
    """This process's connection to Ray for one pool's life."""

    def __init__(self, address: str | None, num_cpus: int) -> None:
        ray = self.ray = import_ray()
        self.owned = False
        self._reaper: Reaper | None = None
        if ray.is_initialized():
            self.watch = ClusterWatch(ray.get_runtime_context().gcs_address, "the Ray cluster")
            return
        # past this long without its GCS, Ray ends the driver: the watch notices first
        os.environ.setdefault(RECONNECT_VARIABLE, str(RECONNECT_S))
        options: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,  # stdout is the stage's event stream
            "configure_logging": True,
            "logging_level": logging.WARNING,
        }
        if address:
            check_reachable(address)
            options["address"] = address
        else:
            # "local": a new instance even when a cluster was started on this machine
            options.update(
                address="local",
                num_cpus=num_cpus,
                object_store_memory=PRIVATE_OBJECT_STORE_BYTES,
            )
        # ray.init replaces the SIGTERM handler with its own exit: the stage's cancel
        # handling (``CancelFlag``: one ``done``/``cancelled``, pools closed) must stay
        handler = signal.getsignal(signal.SIGTERM)
        _errors_to_stderr(ray)
        self._reaper = None if address else Reaper()
        try:
            with _own_process_group(ray, self._reaper):
                ray.init(**options)
        except Exception as exc:
            self._close_reaper()
            where = f"the Ray cluster at {address}" if address else "a private Ray instance"
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StageFailed(RAY_UNAVAILABLE, f"cannot start or join {where}: {message}") from exc
        finally:
            if handler is not None and threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, handler)
        self.owned = True
        where = f"the Ray cluster at {address}" if address else "the private Ray instance"
        self.watch = ClusterWatch(ray.get_runtime_context().gcs_address, where)

    def wait_ready(self, refs: list[Any], timeout: float | None = None) -> list[Any]:
        """``wait_ready`` that also ends the run (StageFailed) should the cluster go away."""
        return wait_ready(self.ray, refs, timeout, self.watch)

    def wait_gone(self, refs: list[Any], timeout: float = CANCEL_WAIT_S) -> None:
        """``wait_gone``, unless the cluster is known to be gone (nothing would answer)."""
        if not self.watch.lost:
            wait_gone(self.ray, refs, timeout)

    def close(self, running: list[Any] | None = None) -> None:
        """Leave Ray once the cancelled ``running`` refs are gone. A private instance is shut
        down and its processes (all this process's descendants, then the reaper's group)
        reaped, killed if they linger: nothing of it outlives the stage, even when a cancel's
        SIGTERM already took its raylet. On a joined cluster, wait (bounded) until every
        cancelled task has ended."""
        if not self.owned:
            self.wait_gone(running or [])
            return
        self.owned = False
        ours = _ray_descendants()
        try:
            self.ray.shutdown()
        finally:
            _, alive = psutil.wait_procs(ours, timeout=CANCEL_WAIT_S / 2)
            for process in alive:
                with contextlib.suppress(psutil.Error):
                    process.kill()
            psutil.wait_procs(alive, timeout=CANCEL_WAIT_S / 2)
            self._close_reaper()

    def _close_reaper(self) -> None:
        if self._reaper is not None:
            self._reaper.close()
            self._reaper = None


RAY_PROCESS_NAMES = ("raylet", "gcs_server")
RAY_PACKAGE_PARTS = ("/ray/_private/", "/ray/dashboard/", "/ray/autoscaler/", "/ray/core/")


def _ray_descendants() -> list[psutil.Process]:
    """This process's descendants that belong to Ray (its node processes and workers)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            name, command = child.name(), " ".join(child.cmdline())
            if (
                name in RAY_PROCESS_NAMES
                or name.startswith("ray::")
                or any(part in command for part in RAY_PACKAGE_PARTS)
            ):
                found.append(child)
    return found


@contextlib.contextmanager
def _own_process_group(ray: Any, reaper: Reaper | None) -> Iterator[None]:
    """Start a private instance's processes (GCS, raylet, and so its agents) in the reaper's
    process group. A cancel signals the stage's whole group: were Ray's processes in it,
    they would die with the driver still connected, and its shutdown would wait out Ray's
    reconnect limit. Out of the group, the driver cancels, kills its actors and shuts the
    instance down itself; should the driver be killed, Ray's kernel-level fate sharing
    (they die with their parent) ends the GCS and raylet, and the reaper the raylet's agents,
    which outlive it by a minute otherwise. Ray is pinned: this is its 2.60 layout."""
    services = getattr(getattr(ray, "_private", None), "services", None)
    original = getattr(services, "ConsolePopen", None)
    if reaper is None or original is None or sys.platform != "linux":
        yield
        return

    class OwnGroupPopen(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("process_group", reaper.pgid)
            super().__init__(*args, **kwargs)

    services.ConsolePopen = OwnGroupPopen
    try:
        yield
    finally:
        services.ConsolePopen = original


def _errors_to_stderr(ray: Any) -> None:
    """Ray's driver prints the cluster's error messages ("A worker died ...") on stdout from a
    background thread, whatever ``log_to_driver`` says; stdout is the stage's event stream,
    so they go to stderr (the job's log) instead. Ray is pinned: this is its 2.60 layout."""
    module = getattr(getattr(ray, "_private", None), "worker", None)
    original = getattr(module, "print_to_stdstream", None)
    if original is None or getattr(original, "_cadvlm_stderr", False):
        return

    def to_stderr(data: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        original({**data, "is_err": True}, *args, **kwargs)

    to_stderr._cadvlm_stderr = True  # type: ignore[attr-defined]
    module.print_to_stdstream = to_stderr


def native(call: Any, *args: Any, **kwargs: Any) -> Any:
    """``call(*args, **kwargs)``, a Ray call into native code. A signal handler's exception
    (the cancel's StageCancelled) raised while Ray checks for signals comes out as a
    SystemError caused by it: the cause is raised instead, so a cancel stays a cancel."""
    try:
        return call(*args, **kwargs)
    except SystemError as exc:
        if exc.__cause__ is not None:
            raise exc.__cause__ from None
        raise


def wait_ready(
    ray: Any, refs: list[Any], timeout: float | None = None, watch: ClusterWatch | None = None
) -> list[Any]:
    """The refs that are ready, after waiting until at least one is or ``timeout`` passed.

    Waits in short slices: ``ray.wait`` blocks in native code, where Python's signal handlers
    cannot run, so one long wait would hold a cancel's SIGTERM back until a task finished.
    Between slices ``watch`` checks that the cluster is still there."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if watch is not None:
            watch.check()
        left = WAIT_SLICE_S if deadline is None else min(WAIT_SLICE_S, deadline - time.monotonic())
        ready, _ = native(ray.wait, refs, num_returns=1, timeout=max(0.0, left), fetch_local=False)
        if ready or (deadline is not None and time.monotonic() >= deadline):
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0, fetch_local=False)
            return ready


def wait_gone(ray: Any, refs: list[Any], timeout: float = CANCEL_WAIT_S) -> None:
    """Wait (bounded) until every ref has an answer: its task ended, was cancelled or died."""
    if refs:
        ray.wait(refs, num_returns=len(refs), timeout=timeout, fetch_local=False)


def death_message(exc: BaseException) -> str:
    """The first line of a Ray error, for a worker that died."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return f"the Ray worker died ({type(exc).__name__}: {first[:200]})"
