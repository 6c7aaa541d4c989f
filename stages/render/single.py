"""One model file to its views, in this process: what the render-views endpoint runs.

Always draws afresh (no skipping of existing files). A model that cannot be built is the
caller's bad input: a ``warning`` event carries its reason, then a UsageError (exit code 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from stages.protocol import Reporter, UsageError
from stages.render.backend import backend_name
from stages.render.images import encode_png, write_atomic
from stages.render.settings import RenderSettings
from stages.render.task import ModelTask, SolidLoader, image_path, load_solid, run_task


def render_model_file(
    source: Path,
    output_dir: Path,
    settings: RenderSettings,
    reporter: Reporter,
    *,
    load: SolidLoader = load_solid,
) -> dict[str, Any]:
    """Render ``source`` into ``output_dir/<id>_<view>.png``; returns the stage result."""
    from stages.render.renderer import OrthoRenderer

    if not source.is_file():
        raise UsageError(f"no such model file: {source}")
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {output_dir}: {exc.strerror or exc}") from exc
    model_id = source.stem
    fresh = replace(settings, skip_existing=False)
    reporter.start(1, unit="models")
    with OrthoRenderer(settings.resolution) as renderer:
        outcome = run_task(renderer, ModelTask(model_id, source, output_dir), fresh, load)
    if not outcome.ok:
        reporter.warning(model_id, outcome.message, outcome.reason)
        reporter.advance(ok=False)
        raise UsageError(f"model {model_id}: {outcome.reason}: {outcome.message}")
    reporter.advance(ok=True, images_rendered=outcome.images_written)
    images = [
        {
            "view": name,
            "path": path,
            "width": settings.resolution,
            "height": settings.resolution,
            "bytes": Path(path).stat().st_size,
        }
        for name, path in outcome.paths.items()
    ]
    return {
        "model_id": model_id,
        "images": images,
        "images_rendered": outcome.images_written,
        "views": list(settings.views),
        "composite": settings.composite,
        "resolution": settings.resolution,
        "ms": {
            "solid": round(outcome.solid_ms, 2),
            "render": round(outcome.render_ms, 2),
            "png": round(outcome.png_ms, 2),
        },
        "backend": backend_name(),
    }


def draw_solid(
    renderer: Any, solid: Any, output_dir: Path, stem: str, views: Sequence[str], resolution: int
) -> dict[str, Path]:
    """Draw a built solid (a generated program's, say) as ``output_dir/<stem>_<view>.png``
    with an open OrthoRenderer; returns each view's path. Drawn as the dataset's images are,
    so the two can be compared side by side."""
    output_dir.mkdir(parents=True, exist_ok=True)
    images = renderer.render(solid, list(views), resolution)
    paths = {}
    for view, pixels in images.items():
        paths[view] = image_path(output_dir, stem, view)
        write_atomic(paths[view], encode_png(pixels))
    return paths
