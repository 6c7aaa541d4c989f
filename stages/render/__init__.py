"""Orthographic pictures of CAD solids: the renderer and the ``render`` stage.

``python -m stages.render`` renders a dataset (see ``__main__``). This module is the package's
public face for other stages and the server: the view names, the resolution limits, the GL
platform that would be used (none of which imports any GL), and ``render_model_views``, which
draws one model file's images in this process.
The view convention is documented in ``stages.render.views``.
"""

from __future__ import annotations

from pathlib import Path

from stages.render.backend import backend_name
from stages.render.settings import MAX_RESOLUTION, MIN_RESOLUTION, RenderSettings
from stages.render.views import COMPOSITE_VIEWS, DEFAULT_VIEWS, VIEWS, parse_views

__all__ = [
    "COMPOSITE_VIEWS",
    "DEFAULT_VIEWS",
    "MAX_RESOLUTION",
    "MIN_RESOLUTION",
    "VIEWS",
    "RenderSettings",
    "backend_name",
    "parse_views",
    "render_model_views",
]


def render_model_views(source: Path, output_dir: Path, settings: RenderSettings) -> dict[str, Path]:
    """Draw one DeepCAD file's images afresh into ``output_dir`` (its views, and the composite
    when ``settings`` asks for it), reporting no events; returns each image's path by name.
    A model that cannot be drawn is a UsageError saying why (its reason first)."""
    from stages.protocol import Reporter
    from stages.render.single import render_model_file  # the renderer loads on first use

    quiet = Reporter("render", mode="none")
    result = render_model_file(Path(source), Path(output_dir), settings, quiet)
    return {image["view"]: Path(image["path"]) for image in result["images"]}
