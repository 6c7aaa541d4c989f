"""Service-level routes: health, host capabilities, the OpenAPI document."""

from __future__ import annotations

from importlib import metadata

from aiohttp import web

from server.appkeys import CONFIG
from server.hostinfo import host_info, training_gpus
from server.http.openapi import documented, openapi_document

routes = web.RouteTableDef()

PIPELINE_STAGES = ("extraction", "rendering", "conversion", "validation", "test-run", "training")
FORMATS = {"tinyllava": {"layouts": ["per_view", "composite", "iso"]}}


def _version() -> str:
    try:
        return metadata.version("cadvlm")
    except metadata.PackageNotFoundError:
        return "0.0.0"


@routes.get("/health")
@documented("Liveness check (never needs a token)", tag="service")
async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "version": _version()})


@routes.get("/training/info")
@documented("What this host can do: stages, views, formats, devices, renderer, versions")
async def training_info(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    host = await host_info(request.app)
    sources = {"synthetic": {"available": True}}
    root = config.deepcad_root
    sources["deepcad"] = {
        "available": bool(root and root.is_dir()),
        "configured": root is not None,
        "how": "set DEEPCAD_ROOT (or --deepcad-root) to a DeepCAD folder or a folder of *.json",
    }
    return web.json_response(
        {
            "service": "cadvlm",
            "version": _version(),
            "stages": list(PIPELINE_STAGES),
            "sources": sources,
            "formats": FORMATS,
            "rendering": host.get("rendering"),
            "devices": host.get("devices"),
            "base_models": ["tiny", "a local LLaVA or TinyLLaVA checkpoint directory"],
            "training_defaults": host.get("training_defaults"),
            "slots": {"cpu": config.cpu_slots, "gpu": config.gpu_slots},
            "training_gpus": training_gpus(host, config.gpu_slots),
            "executors": {**(host.get("executors") or {}), "ray_address": config.ray_address},
            "libraries": host.get("libraries"),
            "python": host.get("python"),
            "cpu_count": host.get("cpu_count"),
            **({"probe_error": host["error"]} if "error" in host else {}),
        }
    )


@routes.get("/openapi.json")
@documented("This API's OpenAPI 3.1 document", tag="service")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(request.app, "cadvlm", _version()))
