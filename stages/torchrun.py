"""torchrun (``torch.distributed.run``), with every rank kept in the launcher's process group.

``python -m stages.torchrun [torchrun options] -m MODULE [args]`` is torch's own launcher with
one change: torch starts each rank in a session of its own (``start_new_session``), so a
signal to the launcher's process group (how the service cancels a job, and how it kills what
a dead server left behind) would reach the launcher but not the ranks: the ranks of a killed
launcher would be left running (the failure of LLaMA-Factory's LlamaBoard, LlamaFactory#3978).
Here the ranks stay in the launcher's group, so SIGTERM and SIGKILL to the group reach every
one, and torch's own shutdown signals each rank by pid.

``torchrun_command`` builds the command line; it imports no torch (the server uses it).
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass

LAUNCHER_MODULE = "stages.torchrun"
DEFAULT_RDZV_PORT = 29400


def env_rank() -> int:
    """This process's rank as torchrun set it (0 outside torchrun)."""
    return int(os.environ.get("RANK", "0"))


def under_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


@dataclass(frozen=True)
class Launch:
    """How many processes per node, on how many nodes, meeting where (and, optionally, which
    node this is)."""

    nproc_per_node: int = 1
    nnodes: int = 1
    rdzv_endpoint: str | None = None  # host[:port] of the rendezvous (several nodes)
    rdzv_id: str | None = None  # the same on every node of one run (c10d)
    node_rank: int | None = None  # this node's place, 0 at rdzv_endpoint: a static rendezvous

    @property
    def distributed(self) -> bool:
        return self.nproc_per_node > 1 or self.nnodes > 1

    def as_json(self) -> dict[str, object]:
        return {
            "nproc_per_node": self.nproc_per_node,
            "nnodes": self.nnodes,
            "rdzv_endpoint": self.rdzv_endpoint,
            "rdzv_id": self.rdzv_id,
            "node_rank": self.node_rank,
        }

    @classmethod
    def from_json(cls, data: dict[str, object] | None) -> Launch:
        data = data or {}
        node_rank = data.get("node_rank")
        return cls(
            nproc_per_node=int(data.get("nproc_per_node") or 1),  # type: ignore[call-overload]
            nnodes=int(data.get("nnodes") or 1),  # type: ignore[call-overload]
            rdzv_endpoint=data.get("rdzv_endpoint") or None,  # type: ignore[arg-type]
            rdzv_id=data.get("rdzv_id") or None,  # type: ignore[arg-type]
            node_rank=None if node_rank is None else int(node_rank),  # type: ignore[call-overload]
        )


def torchrun_options(launch: Launch, shutdown_timeout_s: float | None = None) -> list[str]:
    """torchrun's own options. One node: a private rendezvous on a free local port
    (``--standalone``); several: c10d at ``rdzv_endpoint``, which every node is given (the
    nodes' ranks follow their host names), or with ``node_rank`` a static rendezvous, hosted
    by node 0 at ``rdzv_endpoint`` (each node's ranks are the ones it is told)."""
    options = ["--nproc-per-node", str(launch.nproc_per_node)]
    if launch.nnodes > 1:
        if not launch.rdzv_endpoint:
            raise ValueError("several nodes need a rendezvous endpoint (host:port)")
        options += ["--nnodes", str(launch.nnodes)]
        if launch.node_rank is None:
            options += [
                "--rdzv-backend", "c10d",
                "--rdzv-endpoint", launch.rdzv_endpoint,
                "--rdzv-id", launch.rdzv_id or "cadvlm",
            ]  # fmt: skip
        elif 0 <= launch.node_rank < launch.nnodes:
            options += [
                "--node-rank", str(launch.node_rank),
                "--rdzv-backend", "static",
                "--rdzv-endpoint", launch.rdzv_endpoint,
            ]  # fmt: skip
        else:
            raise ValueError(
                f"the node rank must be 0 to {launch.nnodes - 1}, not {launch.node_rank}"
            )
    else:
        options += ["--standalone"]
    if shutdown_timeout_s is not None:  # how long a signalled rank may take (a checkpoint)
        options += ["--shutdown-timeout", str(max(1, int(shutdown_timeout_s)))]
    return options


def torchrun_command(
    module: str, args: list[str], launch: Launch, shutdown_timeout_s: float | None = None
) -> list[str]:
    """``python -m stages.torchrun <options> -m MODULE ARGS``, with this interpreter."""
    options = torchrun_options(launch, shutdown_timeout_s)
    return [sys.executable, "-m", LAUNCHER_MODULE, *options, "-m", module, *args]


def keep_ranks_in_group() -> None:
    """Start ranks in the launcher's process group, and signal each by its pid (torch signals
    the group it made each rank lead, which no longer exists)."""
    import subprocess

    from torch.distributed.elastic.multiprocessing.subprocess_handler import (
        subprocess_handler as handler,
    )

    def popen(self: handler.SubprocessHandler, args: tuple, env: dict[str, str]) -> object:
        return subprocess.Popen(args=args, env=env, stdout=self._stdout, stderr=self._stderr)

    def close(self: handler.SubprocessHandler, death_sig: object = None) -> None:
        sig = death_sig or handler._get_default_signal()
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)  # type: ignore[arg-type]
        for stream in (self._stdout, self._stderr):
            if stream:
                stream.close()

    handler.SubprocessHandler._popen = popen  # type: ignore[method-assign]
    handler.SubprocessHandler.close = close  # type: ignore[method-assign]


def main() -> None:
    keep_ranks_in_group()
    from torch.distributed.run import main as torchrun_main

    torchrun_main()


if __name__ == "__main__":
    main()
