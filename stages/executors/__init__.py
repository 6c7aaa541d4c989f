"""Where a dataset stage's per-model work runs: ``local`` processes or a ``ray`` cluster.

Every dataset stage takes ``--executor {local,ray}`` and ``--ray-address`` and asks this
package for its pool; the stage's own code is the same for both. ``local`` (the default) is
the crash-isolating process pools of ``stages/workpool.py`` and ``stages/render/worker.py``.
``ray`` sends the same work as Ray tasks from the stage process, which stays the single
driver printing the progress events (the render stage's own Ray pool, one actor per worker
keeping its GL context open, is ``stages/render/ray_pool.py``). With no address a private Ray
instance is started (``num_cpus`` = the stage's workers) and stopped at the end; an address
joins an existing cluster, whose workers must see the dataset folder at the same path (a
shared filesystem: images are written by the workers).

Ray is imported only when the ``ray`` executor is chosen, so local runs never pay for it.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from stages.workpool import DEFAULT_CHUNK_SIZE, Crashed, OrderedPool

T = TypeVar("T")
R = TypeVar("R")

LOCAL = "local"
RAY = "ray"
EXECUTORS = (LOCAL, RAY)
ADDRESS_VARIABLE = "CADVLM_RAY_ADDRESS"


@dataclass(frozen=True, slots=True)
class Executor:
    """Which executor runs a stage's work; ``address`` (ray only) joins a running cluster,
    ``None`` starts a private instance."""

    kind: str = LOCAL
    address: str | None = None

    @property
    def is_ray(self) -> bool:
        return self.kind == RAY


LOCAL_EXECUTOR = Executor()


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--executor",
        choices=EXECUTORS,
        default=LOCAL,
        help="where the per-model work runs: local processes (default) or a Ray cluster",
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        help=f"a Ray cluster to join (host:port; default ${ADDRESS_VARIABLE}, else a private "
        "instance on this machine)",
    )


def executor_from_args(args: argparse.Namespace) -> Executor:
    kind = getattr(args, "executor", LOCAL) or LOCAL
    if kind != RAY:
        return LOCAL_EXECUTOR
    address = getattr(args, "ray_address", None) or os.environ.get(ADDRESS_VARIABLE) or None
    return Executor(RAY, address)


def available_executors() -> list[str]:
    """The executors this installation can run (``ray`` needs the package)."""
    return [LOCAL, *([RAY] if importlib.util.find_spec("ray") is not None else [])]


def ordered_pool(
    work: Callable[[T], R],
    workers: int,
    crashed: Crashed[T, R] | None = None,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    executor: Executor = LOCAL_EXECUTOR,
) -> Any:
    """An ordered pool (``submit``, ``close``, a context manager) on the chosen executor."""
    if executor.is_ray:
        from stages.executors.ray_executor import RayOrderedPool

        address = executor.address
        return RayOrderedPool(work, workers, crashed, chunk_size=chunk_size, address=address)
    return OrderedPool(work, workers, crashed, chunk_size=chunk_size)


def parallel_map(
    work: Callable[[T], R],
    items: Iterable[T],
    workers: int,
    chunksize: int = DEFAULT_CHUNK_SIZE,
    crashed: Crashed[T, R] | None = None,
    executor: Executor = LOCAL_EXECUTOR,
) -> Iterator[R]:
    """``stages.workpool.parallel_map`` on the chosen executor."""
    if not executor.is_ray:
        from stages.workpool import parallel_map as local_map

        yield from local_map(work, items, workers, chunksize, crashed)
        return
    with ordered_pool(work, workers, crashed, chunk_size=chunksize, executor=executor) as pool:
        for _, result in pool.submit(items):
            yield result
