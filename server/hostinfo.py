"""What this host can do (devices, renderer, library versions), probed once, on first use.

The probe runs ``python -m stages.hostinfo`` in a subprocess: importing torch and OpenGL in
the server itself would cost memory and start-up time.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from aiohttp import web

from server.appkeys import HOST_INFO
from server.config import REPO_ROOT

PROBE_TIMEOUT_S = 120.0
_LOCK = web.AppKey("host_info_lock", asyncio.Lock)


async def probe() -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "stages.hostinfo",
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), PROBE_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return {"error": "the host probe timed out"}
    if proc.returncode != 0:
        return {"error": err.decode(errors="replace").strip()[-500:]}
    return json.loads(out)


def install(app: web.Application) -> None:
    app[HOST_INFO] = {}
    app[_LOCK] = asyncio.Lock()


async def host_info(app: web.Application) -> dict[str, Any]:
    """The probe's answer (cached; a failed probe is retried on the next call)."""
    async with app[_LOCK]:
        if not app[HOST_INFO] or "error" in app[HOST_INFO]:
            app[HOST_INFO].clear()
            app[HOST_INFO].update(await probe())
        return app[HOST_INFO]
