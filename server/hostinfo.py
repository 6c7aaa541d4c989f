"""What this host can do (devices, renderer, library versions), probed once, on first use.

The probe is the ``hostinfo`` stage run as a short call: importing torch and OpenGL in the
server itself would cost memory and start-up time.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from server.appkeys import CONFIG, HOST_INFO
from server.http.redact import redactor_for
from server.stagecalls import StageCallError, call_stage

PROBE_TIMEOUT_S = 120.0
_LOCK = web.AppKey("host_info_lock", asyncio.Lock)

log = logging.getLogger("server.hostinfo")


def install(app: web.Application) -> None:
    app[HOST_INFO] = {}
    app[_LOCK] = asyncio.Lock()


async def probe(app: web.Application) -> dict[str, Any]:
    """The probe's answer, served as it is by ``GET /training/info``: paths redacted, and a
    failure said in one line (its stderr is in the server log)."""
    config = app[CONFIG]
    try:
        found = await call_stage(config, "hostinfo", [], timeout=PROBE_TIMEOUT_S)
    except StageCallError as exc:
        return {"error": exc.detail}
    except Exception as exc:  # a timeout or a missing interpreter: report, retry next time
        log.warning("the host probe failed", exc_info=True)
        return {"error": redactor_for(config).text(f"{type(exc).__name__}: {exc}")}
    return redactor_for(config).value(found)


async def host_info(app: web.Application) -> dict[str, Any]:
    """The probe's answer (cached; a failed probe is retried on the next call)."""
    async with app[_LOCK]:
        if not app[HOST_INFO] or "error" in app[HOST_INFO]:
            app[HOST_INFO].clear()
            app[HOST_INFO].update(await probe(app))
        return app[HOST_INFO]


def training_gpus(host: dict[str, Any], gpu_slots: int) -> dict[str, Any]:
    """How many processes (``gpus``) one training job may ask for here. On CUDA one per GPU,
    bounded by the service's gpu slots (a job takes a slot per process); on a CPU, gloo ranks
    up to the slots (each rank a share of the cores: for tests and small runs)."""
    devices = host.get("devices") or {}
    cuda = len(devices.get("cuda_devices") or []) if isinstance(devices, dict) else 0
    return {
        "cuda_devices": cuda,
        "gpu_slots": gpu_slots,
        "backend": "nccl" if cuda else "gloo",
        "max_gpus_per_job": min(cuda, gpu_slots) if cuda else gpu_slots,
        "launcher": "torchrun (python -m stages.torchrun), one process per GPU",
        "multi_node": "config.nnodes and config.rdzv_endpoint (c10d rendezvous)",
    }
