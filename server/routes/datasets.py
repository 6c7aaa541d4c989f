"""Dataset routes: extract a subset, list datasets, their status, delete, serve images."""

from __future__ import annotations

import asyncio
import secrets
import shutil
from pathlib import Path

from aiohttp import web

from server import dataset_registry as registry
from server.appkeys import CONFIG, RUNNER, STORE
from server.bodies.datasets import ExtractRequest
from server.executors import executor_args
from server.http.estimates import started_response
from server.http.jobviews import percentage
from server.http.lookups import image_or_404
from server.http.openapi import documented
from server.http.problems import ProblemError, conflict, invalid, not_found
from server.http.requests import read_body
from server.jobs.live import new_job_id
from server.jobs.store import DELETION_PREFIX
from server.stagecalls import check_or_422
from stages.dataset.layout import images_dir

routes = web.RouteTableDef()

BYTES_PER_MODEL_ESTIMATE = 8 * 1024  # a DeepCAD JSON file, for the free-disk check


def ensure_disk(path: Path, needed: int, field: str) -> None:
    free = shutil.disk_usage(path).free
    if free < needed:
        raise ProblemError(
            507,
            f"not enough disk: about {registry.human_size(needed)} needed, "
            f"{registry.human_size(free)} free",
            field=field,
            kind="insufficient-storage",
        )


@routes.post("/training/datasets/extract")
@documented(
    "Extract a train/val subset from DeepCAD or the synthetic source",
    body=ExtractRequest,
    status=202,
    errors=(409, 504),
)
async def extract(request: web.Request) -> web.Response:
    body = await read_body(request, ExtractRequest)
    name = registry.check_name(body.output_name)
    job_id = new_job_id("extract")
    async with request.app[STORE].reserved(name, job_id):
        return await _start_extract(request, body, name, job_id)


async def _start_extract(
    request: web.Request, body: ExtractRequest, name: str, job_id: str
) -> web.Response:
    config, store = request.app[CONFIG], request.app[STORE]
    path = registry.dataset_dir(config, name)
    if path.exists():
        raise conflict(f"dataset {name!r} already exists; delete it or choose another name")
    root_args = ["--root", str(config.deepcad_root)] if config.deepcad_root else []
    source = await check_or_422(
        config, "extract.sources", ["--source", body.source, *root_args], "source"
    )
    for split, size, field in (
        ("train_available", body.train_size, "train_size"),
        ("validation_available", body.val_size, "val_size"),
    ):
        available = source.get(split)
        if available is not None and size > available:
            raise invalid(field, f"{field} {size} is larger than the source's split ({available})")
    total = body.train_size + body.val_size
    ensure_disk(config.data_root, total * BYTES_PER_MODEL_ESTIMATE, "train_size")
    args = [*body.to_args(), *root_args, "--output", str(path), "--name", name]
    args += ["--workers", str(config.workers)]
    args += await executor_args(config, body, config.data_root)
    job = await request.app[RUNNER].submit(
        "extract", "extract", args, body.model_dump(), dataset=name, job_id=job_id
    )
    return await started_response(
        store, job, items=total, output_path=f"data/training/{name}", models_to_extract=total
    )


@routes.get("/training/datasets")
@documented("List every dataset with its counts, size and status")
async def list_all(request: web.Request) -> web.Response:
    items, skipped = await registry.list_datasets(request.app[CONFIG], request.app[STORE])
    return web.json_response({"datasets": items, "skipped": skipped})


@routes.get("/training/datasets/{dataset_name}/status")
@documented("A dataset's overall status, the running stage's progress and every stage's state")
async def status(request: web.Request) -> web.Response:
    config, store = request.app[CONFIG], request.app[STORE]
    name = registry.check_name(request.match_info["dataset_name"], "dataset_name")
    active = await registry.active_jobs(store, name)
    exists = registry.has_dataset(config, name)
    if not exists and not active:
        raise not_found("dataset", name)
    if exists:
        summary = await registry.dataset_summary(config, store, name)
    else:
        summary = {"status": "extracting", "stages": {"extraction": "in_progress"}}
    latest = await registry.latest_jobs_by_kind(store, name)
    current = (
        active[0] if active else max(latest.values(), key=lambda j: j.created_at, default=None)
    )
    progress = {"current": 0, "total": 0, "percentage": 0.0}
    if current is not None:
        progress = {
            "current": current.progress.get("current") or 0,
            "total": current.progress.get("total") or 0,
            "percentage": percentage(current),
            "job_id": current.id,
            "kind": current.kind,
        }
    stages = {stage: "pending" for stage in registry.STAGES} | summary["stages"]
    counts = {k: summary[k] for k in ("models", "images", "conversations", "size") if k in summary}
    return web.json_response(
        {
            "dataset": name,
            "status": summary["status"],
            "progress": progress,
            "stages": stages,
            **counts,
        }
    )


@routes.delete("/training/datasets/{dataset_name}")
@documented("Delete a dataset (refused while a job uses it)", errors=(409,))
async def delete(request: web.Request) -> web.Response:
    config, store = request.app[CONFIG], request.app[STORE]
    name = registry.check_name(request.match_info["dataset_name"], "dataset_name")
    path = registry.dataset_dir(config, name)
    if not path.is_dir():
        raise not_found("dataset", name)
    token = secrets.token_hex(5)
    async with store.reserved(name, f"{DELETION_PREFIX}{token}"):  # 409 while a job holds it
        # Renamed first, in one step: a data root that refuses it loses nothing, and a
        # dataset is never left half deleted under its own name.
        doomed = path.with_name(f"{registry.DELETED_PREFIX}{name}-{token}")
        try:
            path.rename(doomed)
        except OSError as exc:
            reason = exc.strerror or "storage error"
            raise ProblemError(
                503, f"the dataset could not be deleted: {reason}", kind="storage-error"
            ) from exc
    await asyncio.to_thread(shutil.rmtree, doomed, ignore_errors=True)
    return web.json_response({"success": True, "deleted": name})


@routes.get("/training/datasets/{dataset_name}/images/{filename}")
@documented("One rendered image of a dataset (PNG)", media_type="image/png")
async def image(request: web.Request) -> web.StreamResponse:
    config = request.app[CONFIG]
    name = registry.check_name(request.match_info["dataset_name"], "dataset_name")
    filename = registry.check_image_name(request.match_info["filename"])
    return image_or_404(filename, images_dir(registry.dataset_dir(config, name)))
