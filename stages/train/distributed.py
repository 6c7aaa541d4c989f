"""The training stage's ranks under torchrun: who this process is, and what ranks agree on.

A run of ``gpus`` > 1 is several processes (ranks) started by ``python -m stages.torchrun``
(torch's launcher; see ``stages/torchrun.py``), one per GPU, or gloo processes on a CPU. Every
rank trains on its own share of each global batch (DDP averages the gradients); rank 0 alone
prints protocol events and writes files. With one process every function here is a no-op, so
the single-process loop is exactly what it was.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from stages.torchrun import env_rank, under_torchrun
from stages.train.config import ConfigError
from stages.train.devices import Runtime

log = logging.getLogger("stages.train")

# Rank 0 evaluates and checkpoints while the others wait in a collective: generous.
COLLECTIVE_TIMEOUT = datetime.timedelta(hours=2)


@dataclass(frozen=True)
class Ranks:
    """This process's place among the run's processes."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def many(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.many:
            dist.barrier()

    def any_true(self, flag: bool, device: torch.device) -> bool:
        """True on every rank when it is true on any (the cancel: all stop at one step)."""
        if not self.many:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def sum_(self, values: Sequence[float], device: torch.device) -> list[float]:
        """The element-wise sum of ``values`` over the ranks (float64: exact for counts)."""
        if not self.many:
            return list(values)
        tensor = torch.tensor(list(values), dtype=torch.float64, device=device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def sum_tensor_(self, tensor: torch.Tensor) -> None:
        """Sum ``tensor`` over the ranks, in place."""
        if self.many:
            dist.all_reduce(tensor)

    def rng_states(self) -> list[Any] | None:
        """Every rank's random state, (cpu, this rank's cuda), gathered on every rank."""
        if not self.many:
            return None
        cuda = torch.cuda.get_rng_state() if torch.cuda.is_available() else None
        gathered: list[Any] = [None] * self.world
        dist.all_gather_object(gathered, (torch.get_rng_state(), cuda))
        return gathered

    def shard(self, batch: list[int], order: Sequence[int]) -> list[int]:
        """This rank's share of one global batch: contiguous, as even as the batch allows.
        A batch shorter than the world is padded from the start of the epoch's order (as
        torch's DistributedSampler pads), so no rank ever has an empty step."""
        if not self.many:
            return batch
        padded = list(batch)
        i = 0
        while len(padded) < self.world:
            padded.append(order[i % len(order)])
            i += 1
        base, extra = divmod(len(padded), self.world)
        start = self.rank * base + min(self.rank, extra)
        return padded[start : start + base + (1 if self.rank < extra else 0)]


def init_ranks(gpus: int, runtime: Runtime) -> tuple[Ranks, Runtime]:
    """Join the run's process group (nccl on CUDA, gloo elsewhere) when torchrun started this
    process; ``gpus`` must be the processes torchrun started on this node. Returns the ranks
    and the runtime on this rank's own GPU."""
    if not under_torchrun():
        if gpus > 1:
            raise ConfigError(
                "gpus", f"{gpus} processes need torchrun: run it with python -m stages.train"
            )
        return Ranks(), runtime
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"]))
    if local_world != gpus:
        raise ConfigError(
            "gpus", f"the run asks for {gpus} processes per node but torchrun started {local_world}"
        )
    ranks = Ranks(env_rank(), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]))
    if runtime.is_cuda:
        if ranks.local_rank >= torch.cuda.device_count():
            raise ConfigError(
                "gpus", f"{gpus} processes per node but {torch.cuda.device_count()} GPUs here"
            )
        torch.cuda.set_device(ranks.local_rank)
        runtime = Runtime(torch.device("cuda", ranks.local_rank), runtime.precision)
    if ranks.many and not dist.is_initialized():
        backend = "nccl" if runtime.is_cuda else "gloo"
        dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT)
        log.info("rank %d of %d joined (%s)", ranks.rank, ranks.world, backend)
    return ranks, runtime


def leave_group() -> None:
    """Leave the run's process group, if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap_for_ranks(model: nn.Module, ranks: Ranks, runtime: Runtime) -> nn.Module:
    """What the loop trains through: the model itself, or with several ranks, DDP around it
    (gradients averaged over the ranks); checkpoints and evaluation use the model itself."""
    if not ranks.many:
        return model
    device_ids = [runtime.device.index] if runtime.is_cuda else None
    return DistributedDataParallel(model, device_ids=device_ids)


def no_sync_unless(model: nn.Module, steps_now: bool) -> contextlib.AbstractContextManager[Any]:
    """Under DDP, gradients of micro-batches that end no optimizer step stay local."""
    if isinstance(model, DistributedDataParallel) and not steps_now:
        return model.no_sync()
    return contextlib.nullcontext()
