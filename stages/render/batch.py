"""The render stage over a dataset: every model of its models folder to PNG views.

Work is spread over a render pool (local processes or Ray actors: ``stages.executors``); each
finished model is counted on the Reporter (failures as warnings with their reason), so the
server sees ``images_rendered`` grow as it goes. Images already written and valid are skipped,
which makes an interrupted run resumable.

Two endings are not a completed render, and raise StageFailed with the result: a write that
failed (a full disk, a read-only folder: every later model would fail the same way, so no new
model is started and the run fails as ``write_failed``), and a batch where every model failed
(``all_failed``).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from stages.dataset.layout import MODELS_FOLDER, images_dir
from stages.executors import LOCAL_EXECUTOR, Executor
from stages.protocol import WRITE_FAILED, Reporter, StageFailed, UsageError, require_some_succeeded
from stages.render.backend import backend_name
from stages.render.catalog import Catalog, find_models
from stages.render.pools import render_pool
from stages.render.settings import RenderSettings
from stages.render.task import ModelOutcome, ModelTask, SolidLoader, load_solid
from stages.render.worker import RECYCLE_AFTER


def load_catalog(dataset_dir: Path, only: list[str] | None) -> Catalog:
    """The models to render, or UsageError when there is nothing to do."""
    try:
        catalog = find_models(dataset_dir, only)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from exc
    if not catalog.models:
        if only is not None:
            raise UsageError(
                f"none of the {len(catalog.missing)} requested models is in {dataset_dir}"
            )
        raise UsageError(f"no models (*.json) under {dataset_dir / MODELS_FOLDER}")
    return catalog


class RunTotals:
    """The numbers a render run reports, fed one outcome at a time."""

    def __init__(self) -> None:
        self.models = 0
        self.rendered = 0
        self.skipped_existing = 0
        self.failed = 0
        self.images_rendered = 0
        self.images_existing = 0
        self.failures_by_reason: Counter[str] = Counter()
        self.failed_models: dict[str, str] = {}  # model id -> reason
        self.first_write_error = ""
        self.cpu_ms = {"solid": 0.0, "render": 0.0, "png": 0.0}
        self.peak_worker_rss_mb = 0.0

    def fail(self, model_id: str, reason: str) -> None:
        self.models += 1
        self.failed += 1
        self.failures_by_reason[reason] += 1
        self.failed_models[model_id] = reason

    def add(self, outcome: ModelOutcome) -> None:
        self.images_rendered += outcome.images_written
        self.images_existing += outcome.images_existing
        self.peak_worker_rss_mb = max(self.peak_worker_rss_mb, outcome.peak_rss_mb)
        if not outcome.ok:
            self.fail(outcome.model_id, outcome.reason or "unknown")
            if outcome.reason == WRITE_FAILED and not self.first_write_error:
                self.first_write_error = outcome.message
            return
        self.models += 1
        if outcome.skipped:
            self.skipped_existing += 1
        else:
            self.rendered += 1
            self.cpu_ms["solid"] += outcome.solid_ms
            self.cpu_ms["render"] += outcome.render_ms
            self.cpu_ms["png"] += outcome.png_ms

    def result(self, elapsed_s: float) -> dict[str, Any]:
        attempted = self.rendered + self.failed
        per_model = {
            k: round(v / self.rendered, 2) if self.rendered else 0.0 for k, v in self.cpu_ms.items()
        }
        return {
            "models": self.models,
            "rendered": self.rendered,
            "skipped_existing": self.skipped_existing,
            "failed": self.failed,
            "failures_by_reason": dict(sorted(self.failures_by_reason.items())),
            "failed_models": dict(sorted(self.failed_models.items())),
            "images_rendered": self.images_rendered,
            "images_existing": self.images_existing,
            "elapsed_s": round(elapsed_s, 3),
            "models_per_s": round(attempted / elapsed_s, 3) if elapsed_s > 0 else 0.0,
            "images_per_s": round(self.images_rendered / elapsed_s, 3) if elapsed_s > 0 else 0.0,
            "ms_per_model": per_model,
            "peak_worker_rss_mb": round(self.peak_worker_rss_mb, 1),
        }


def render_dataset(
    dataset_dir: Path,
    output_dir: Path,
    settings: RenderSettings,
    reporter: Reporter,
    *,
    workers: int,
    only: list[str] | None = None,
    load: SolidLoader = load_solid,
    recycle_after: int = RECYCLE_AFTER,
    executor: Executor = LOCAL_EXECUTOR,
) -> dict[str, Any]:
    """Render the dataset's models into ``output_dir``'s images folder; returns the stage
    result, or raises StageFailed with it (see the module's docstring)."""
    catalog = load_catalog(dataset_dir, only)
    images = images_dir(output_dir)
    try:
        images.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StageFailed(WRITE_FAILED, f"cannot create {images}: {exc.strerror or exc}") from exc

    totals = RunTotals()
    reporter.start(len(catalog.models) + len(catalog.missing), unit="models")
    reporter.progress(force=True, images_rendered=0, skipped_existing=0)
    for path in catalog.duplicates:
        reporter.warning(
            path.stem, f"{path} repeats an id already used; not rendered", "duplicate_id"
        )
    for model_id in catalog.missing:
        totals.fail(model_id, "not_found")
        reporter.warning(model_id, "no such model in the dataset", "not_found")
        reporter.advance(ok=False)

    tasks = [ModelTask(model_id, path, images) for model_id, path in catalog.models.items()]
    started = time.monotonic()
    with render_pool(
        min(workers, len(tasks)),
        settings,
        executor=executor,
        load=load,
        recycle_after=recycle_after,
    ) as pool:
        for outcome in pool.run(tasks):
            totals.add(outcome)
            if not outcome.ok:
                reporter.warning(outcome.model_id, outcome.message, outcome.reason)
            reporter.advance(
                ok=outcome.ok,
                reused=outcome.skipped,
                images_rendered=outcome.images_written,
                skipped_existing=int(outcome.skipped),
            )
            if outcome.reason == WRITE_FAILED:
                pool.stop_new()  # a storage fault: every later model would meet it too
    result = totals.result(time.monotonic() - started)
    result.update(
        views=list(settings.views),
        composite=settings.composite,
        resolution=settings.resolution,
        images_dir=str(images),
        workers=min(workers, len(tasks)),
        executor=executor.kind,
        backend=backend_name(),
    )
    fail_unless_rendered(totals, len(catalog.models) + len(catalog.missing), images, result)
    return result


def fail_unless_rendered(
    totals: RunTotals, total: int, images: Path, result: dict[str, Any]
) -> None:
    """StageFailed (with ``result``) for a write that failed or a batch where every model
    failed: neither is a completed render, however many images were written."""
    failed = totals.failures_by_reason[WRITE_FAILED]
    if failed:
        detail = (
            f"could not write the images of {failed} model{'s' if failed != 1 else ''} to "
            f"{images} ({totals.first_write_error}); stopped after {totals.models} of {total} "
            "models"
        )
        raise StageFailed(WRITE_FAILED, detail, result)
    done = totals.rendered + totals.skipped_existing
    require_some_succeeded(total, done, totals.failures_by_reason, result=result)
