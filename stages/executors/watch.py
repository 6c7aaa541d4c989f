"""Noticing that the Ray cluster went away mid-run, before Ray ends the driver for it.

When the GCS stops answering, Ray's driver keeps trying for its reconnect limit
(``RAY_gcs_rpc_server_reconnect_timeout_s``) and then terminates the whole process from
native code: no ``done`` event, no result, only a line on stderr. The pools' waits call
``ClusterWatch.check`` instead, which tries a plain TCP connection to the GCS now and then,
and a worker's death ``ClusterWatch.confirm`` before anything is retried; once the GCS has
refused connections for a third of Ray's limit, the run ends as a one-line
``ray_unavailable`` failure (``StageFailed``), leaving the rest of Ray's limit for the pools
to close.
"""

from __future__ import annotations

import os
import socket
import time

from stages.protocol import StageFailed

RAY_UNAVAILABLE = "ray_unavailable"
RECONNECT_VARIABLE = "RAY_gcs_rpc_server_reconnect_timeout_s"
RECONNECT_S = 30  # Ray's limit unless the environment sets one
CHECK_EVERY_S = 1.0
PROBE_TIMEOUT_S = 1.0
MAX_LOST_S = 10.0


def reconnect_limit_s() -> float:
    """Ray's reconnect limit as this process's environment sets it."""
    try:
        return max(1.0, float(os.environ.get(RECONNECT_VARIABLE, RECONNECT_S)))
    except ValueError:
        return float(RECONNECT_S)


class ClusterWatch:
    """Whether the GCS at ``gcs_address`` (host:port) still takes connections."""

    def __init__(self, gcs_address: str, where: str) -> None:
        host, _, port = gcs_address.rpartition(":")
        self.endpoint = (host, int(port)) if host and port.isdigit() else None
        self.where = where
        self.lost_after_s = min(MAX_LOST_S, reconnect_limit_s() / 3)
        self.lost = False
        self._next_check = 0.0
        self._refused_since: float | None = None

    def check(self) -> None:
        """StageFailed once the GCS has refused connections for ``lost_after_s``; cheap
        between checks (at most one connection a second)."""
        if self.endpoint is None or time.monotonic() < self._next_check:
            return
        self._next_check = time.monotonic() + CHECK_EVERY_S
        self._answers()

    def confirm(self) -> None:
        """A worker died: was it the cluster? While the GCS refuses connections, wait (in
        short sleeps a cancel's signal still interrupts) until it answers again or
        ``lost_after_s`` has passed (StageFailed). Called before a fresh worker is asked for:
        starting an actor without a GCS would block in native code until Ray's own limit."""
        while self.endpoint is not None and not self._answers():
            time.sleep(CHECK_EVERY_S / 4)

    def _answers(self) -> bool:
        """Whether the GCS takes a connection now; StageFailed when it has not for long."""
        assert self.endpoint is not None
        now = time.monotonic()
        try:
            with socket.create_connection(self.endpoint, timeout=PROBE_TIMEOUT_S):
                pass
        except OSError as exc:
            if self._refused_since is None:
                self._refused_since = now
            if now - self._refused_since >= self.lost_after_s:
                self.lost = True
                raise StageFailed(
                    RAY_UNAVAILABLE,
                    f"{self.where} went away mid-run: its GCS at {self.endpoint[0]}:"
                    f"{self.endpoint[1]} has refused connections for "
                    f"{now - self._refused_since:.0f} s ({exc.strerror or exc})",
                ) from exc
            return False
        self._refused_since = None
        return True
