"""One model, start to finish: skip what is already drawn, build the solid, render, write PNGs.

This is the unit of work a pool worker runs; single-model mode runs it in-process. It never
raises for a bad model: the outcome says why it failed (the CadError reason, or ``timeout``,
``render_failed``, ``write_failed``), so one broken model is a counted warning in a batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stages.dataset.layout import COMPOSITE, image_file_name
from stages.protocol import WRITE_FAILED
from stages.render.composite import compose
from stages.render.images import encode_png, is_valid_png, write_atomic
from stages.render.settings import RenderSettings
from stages.render.views import COMPOSITE_VIEWS


@dataclass(frozen=True, slots=True)
class ModelTask:
    model_id: str
    source: Path  # the DeepCAD JSON file
    output_dir: Path  # images go to output_dir / image_file_name(model_id, view)


@dataclass(slots=True)
class ModelOutcome:
    """What happened to one model; ``reason`` is set exactly when it failed."""

    model_id: str
    images_written: int = 0
    images_existing: int = 0
    reason: str | None = None
    message: str = ""
    solid_ms: float = 0.0
    render_ms: float = 0.0
    png_ms: float = 0.0
    paths: dict[str, str] = field(default_factory=dict)
    peak_rss_mb: float = 0.0

    @property
    def ok(self) -> bool:
        return self.reason is None

    @property
    def skipped(self) -> bool:
        """Every requested image was already there and valid: nothing was built."""
        return self.ok and self.images_written == 0 and self.images_existing > 0


def image_path(output_dir: Path, model_id: str, view: str) -> Path:
    return output_dir / image_file_name(model_id, view)


def wanted_images(settings: RenderSettings) -> tuple[str, ...]:
    """The image names a model gets: its views, then the composite when asked."""
    return settings.views + ((COMPOSITE,) if settings.composite else ())


def views_to_render(missing: tuple[str, ...]) -> tuple[str, ...]:
    """The views to draw so that every missing image (a view or the composite) can be written."""
    views = [name for name in missing if name != COMPOSITE]
    if COMPOSITE in missing:
        views += [name for name in COMPOSITE_VIEWS if name not in views]
    return tuple(views)


def load_solid(source: Path, time_limit: float) -> Any:
    """The model's solid, built by the CAD package (imported here to keep start-up light)."""
    from stages.cad.deepcad import load_deepcad
    from stages.cad.solid import build_solid

    return build_solid(load_deepcad(source), time_limit=time_limit)


SolidLoader = Callable[[Path, float], Any]


def run_task(
    renderer: Any,
    task: ModelTask,
    settings: RenderSettings,
    load: SolidLoader = load_solid,
) -> ModelOutcome:
    """Draw one model's missing images with ``renderer`` (an OrthoRenderer); never raises
    for a bad model. ``load`` turns a source file into a solid (tests pass their own)."""
    from stages.cad.model import CadError

    outcome = ModelOutcome(task.model_id)
    paths = {
        name: image_path(task.output_dir, task.model_id, name) for name in wanted_images(settings)
    }
    outcome.paths = {name: str(path) for name, path in paths.items()}
    missing = tuple(
        name
        for name, path in paths.items()
        if not (settings.skip_existing and is_valid_png(path, settings.resolution))
    )
    outcome.images_existing = len(paths) - len(missing)
    if not missing:
        return outcome

    started = time.process_time()
    try:
        solid = load(task.source, settings.time_limit)
    except CadError as exc:
        return _failed(outcome, exc.reason, exc.detail or str(exc))
    except MemoryError:
        return _failed(outcome, "out_of_memory", "building the solid ran out of memory")
    except Exception as exc:  # a builder bug on one model must not end the batch either
        return _failed(outcome, "build_failed", f"{type(exc).__name__}: {exc}")
    rendered_at = time.process_time()
    outcome.solid_ms = (rendered_at - started) * 1000.0

    try:
        images = renderer.render(solid, views_to_render(missing), settings.resolution)
        if COMPOSITE in missing:
            images[COMPOSITE] = compose(images, settings.resolution)
    except Exception as exc:  # a model the renderer cannot draw must not end the batch
        return _failed(outcome, "render_failed", f"{type(exc).__name__}: {exc}")
    encoded_at = time.process_time()
    outcome.render_ms = (encoded_at - rendered_at) * 1000.0

    try:
        for name in missing:
            write_atomic(paths[name], encode_png(images[name]))
            outcome.images_written += 1
    except OSError as exc:
        return _failed(outcome, WRITE_FAILED, f"{exc.strerror or exc}: {exc.filename or ''}")
    outcome.png_ms = (time.process_time() - encoded_at) * 1000.0
    return outcome


def _failed(outcome: ModelOutcome, reason: str, message: str) -> ModelOutcome:
    outcome.reason = reason
    outcome.message = message
    return outcome
