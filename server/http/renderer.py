"""Requests checked against what this host's renderer can do: views and resolution.

The one place the HTTP side checks them, for every route that draws (a dataset, one model, a
batch, one training pair), so a bad view is a 422 naming the field the caller sent before
any stage runs.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.bodies.render import RenderOptions
from server.hostinfo import host_info
from server.http.problems import ProblemError, invalid


async def rendering_limits(app: web.Application) -> dict[str, Any]:
    """The renderer's views and resolution range; 503 when this host cannot render."""
    rendering = (await host_info(app)).get("rendering") or {}
    if "error" in rendering or "views" not in rendering:
        reason = rendering.get("error", "unknown")
        raise ProblemError(503, f"rendering is not available on this host: {reason}")
    return rendering


def check_view(rendering: dict[str, Any], view: str, field: str) -> None:
    known = rendering["views"]
    if view not in known:
        raise invalid(field, f"unknown view {view!r}; views are {', '.join(known)}")


def check_resolution(rendering: dict[str, Any], resolution: int) -> None:
    lo, hi = rendering["min_resolution"], rendering["max_resolution"]
    if not lo <= resolution <= hi:
        raise invalid("resolution", f"resolution must be between {lo} and {hi}")


async def checked_views(app: web.Application, options: RenderOptions) -> list[str]:
    """The views to draw, each known and none twice; left out, the renderer's defaults."""
    rendering = await rendering_limits(app)
    views = options.views if options.views is not None else list(rendering["default_views"])
    for index, view in enumerate(views):
        check_view(rendering, view, f"views.{index}")
    if len(set(views)) != len(views):
        raise invalid("views", "views must not repeat")
    check_resolution(rendering, options.resolution)
    return views
