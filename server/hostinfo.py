"""What this host can do (devices, renderer, library versions), probed once, on first use.

The probe is the ``hostinfo`` stage run as a short call: importing torch and OpenGL in the
server itself would cost memory and start-up time.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from server.appkeys import CONFIG, HOST_INFO
from server.stagecalls import StageCallError, call_stage

PROBE_TIMEOUT_S = 120.0
_LOCK = web.AppKey("host_info_lock", asyncio.Lock)


def install(app: web.Application) -> None:
    app[HOST_INFO] = {}
    app[_LOCK] = asyncio.Lock()


async def probe(app: web.Application) -> dict[str, Any]:
    try:
        return await call_stage(app[CONFIG], "hostinfo", [], timeout=PROBE_TIMEOUT_S)
    except StageCallError as exc:
        return {"error": exc.stderr[-500:] or str(exc)}
    except Exception as exc:  # a timeout or a missing interpreter: report, retry next time
        return {"error": str(exc)}


async def host_info(app: web.Application) -> dict[str, Any]:
    """The probe's answer (cached; a failed probe is retried on the next call)."""
    async with app[_LOCK]:
        if not app[HOST_INFO] or "error" in app[HOST_INFO]:
            app[HOST_INFO].clear()
            app[HOST_INFO].update(await probe(app))
        return app[HOST_INFO]
