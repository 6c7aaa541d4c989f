"""The render stage's pool on the chosen executor: its own GL worker processes (``worker``) or
one Ray actor per worker (``ray_pool``); both offer ``run``, ``stop_new`` and ``close``."""

from __future__ import annotations

from typing import Any

from stages.executors import LOCAL_EXECUTOR, Executor


def render_pool(
    workers: int, settings: Any, *, executor: Executor = LOCAL_EXECUTOR, **options: Any
) -> Any:
    """A render pool on ``executor`` (Ray is imported only when it is chosen)."""
    if executor.is_ray:
        from stages.render.ray_pool import RayRenderPool

        return RayRenderPool(workers, settings, address=executor.address, **options)
    from stages.render.worker import RenderPool

    return RenderPool(workers, settings, **options)
