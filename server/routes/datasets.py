"""Dataset routes: extract a subset, list datasets, their status, delete, serve images."""

from __future__ import annotations

import asyncio
import re
import shutil
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from server import datasets
from server.apidoc import documented
from server.appkeys import CONFIG, RUNNER, STORE
from server.estimates import started_response
from server.jobviews import percentage
from server.problems import ProblemError, conflict, not_found
from server.requests import read_body
from server.stagecalls import check_or_422

routes = web.RouteTableDef()

MAX_MODELS = 1_000_000
BYTES_PER_MODEL_ESTIMATE = 8 * 1024  # a DeepCAD JSON file, for the free-disk check
IMAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.png$")


class ExtractRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Literal["deepcad", "synthetic"] = "synthetic"
    train_size: StrictInt = Field(ge=1, le=MAX_MODELS)
    val_size: StrictInt = Field(ge=1, le=MAX_MODELS)
    output_name: str
    seed: StrictInt = Field(default=0, ge=0, le=2**31 - 1)
    max_extrudes: StrictInt | None = Field(default=None, ge=1, le=100)
    max_curves: StrictInt | None = Field(default=None, ge=1, le=10_000)
    unique_keys: StrictBool = False


def ensure_disk(path, needed: int, field: str) -> None:
    free = shutil.disk_usage(path).free
    if free < needed:
        raise ProblemError(
            507,
            f"not enough disk: about {datasets.human_size(needed)} needed, "
            f"{datasets.human_size(free)} free",
            field=field,
            kind="insufficient-storage",
        )


@routes.post("/training/datasets/extract")
@documented("Extract a train/val subset from DeepCAD or the synthetic source", body=ExtractRequest)
async def extract(request: web.Request) -> web.Response:
    body = await read_body(request, ExtractRequest)
    config, store = request.app[CONFIG], request.app[STORE]
    name = datasets.check_name(body.output_name)
    path = datasets.dataset_dir(config, name)
    if path.exists() or await datasets.active_jobs(store, name):
        raise conflict(f"dataset {name!r} already exists; delete it or choose another name")
    root = config.deepcad_root
    source_args = ["--source", body.source] + (["--root", str(root)] if root else [])
    source = await check_or_422("stages.extract.sources", source_args, "source")
    for split, size, field in (
        ("train_available", body.train_size, "train_size"),
        ("validation_available", body.val_size, "val_size"),
    ):
        available = source.get(split)
        if available is not None and size > available:
            raise ProblemError(
                422,
                f"{field} {size} is larger than the source's split ({available} models)",
                field=field,
                kind="invalid-value",
            )
    total = body.train_size + body.val_size
    ensure_disk(config.data_root, total * BYTES_PER_MODEL_ESTIMATE, "train_size")
    args = [
        *source_args,
        "--train-size", str(body.train_size),
        "--val-size", str(body.val_size),
        "--output", str(path),
        "--name", name,
        "--seed", str(body.seed),
        "--workers", str(config.workers),
    ]  # fmt: skip
    if body.max_extrudes:
        args += ["--max-extrudes", str(body.max_extrudes)]
    if body.max_curves:
        args += ["--max-curves", str(body.max_curves)]
    if body.unique_keys:
        args.append("--unique-keys")
    job = await request.app[RUNNER].submit(
        "extract", "extract", args, body.model_dump(), dataset=name
    )
    return await started_response(
        store, job, items=total, output_path=f"data/training/{name}", models_to_extract=total
    )


@routes.get("/training/datasets")
@documented("List every dataset with its counts, size and status")
async def list_all(request: web.Request) -> web.Response:
    items = await datasets.list_datasets(request.app[CONFIG], request.app[STORE])
    return web.json_response({"datasets": items})


@routes.get("/training/datasets/{dataset_name}/status")
@documented("A dataset's overall status, the running stage's progress and every stage's state")
async def status(request: web.Request) -> web.Response:
    config, store = request.app[CONFIG], request.app[STORE]
    name = request.match_info["dataset_name"]
    active = await datasets.active_jobs(store, datasets.check_name(name, "dataset_name"))
    manifest_exists = (datasets.dataset_dir(config, name) / "dataset.json").is_file()
    if not manifest_exists and not active:
        raise not_found("dataset", name)
    if manifest_exists:
        summary = await datasets.dataset_summary(config, store, name)
    else:
        summary = {"status": "extracting", "stages": {"extraction": "in_progress"}}
    latest = await datasets.latest_jobs_by_kind(store, name)
    current = (
        active[0] if active else (max(latest.values(), key=lambda j: j.created_at, default=None))
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
    stages = summary["stages"]
    for stage in ("extraction", "rendering", "conversion", "validation"):
        stages.setdefault(stage, "pending")
    return web.json_response(
        {
            "dataset": name,
            "status": summary["status"],
            "progress": progress,
            "stages": stages,
            **{
                k: summary[k] for k in ("models", "images", "conversations", "size") if k in summary
            },
        }
    )


@routes.delete("/training/datasets/{dataset_name}")
@documented("Delete a dataset (refused while a job uses it)")
async def delete(request: web.Request) -> web.Response:
    config, store = request.app[CONFIG], request.app[STORE]
    name = datasets.check_name(request.match_info["dataset_name"], "dataset_name")
    path = datasets.dataset_dir(config, name)
    if await datasets.active_jobs(store, name):
        raise conflict(f"dataset {name!r} is in use by a running or queued job")
    if not path.is_dir():
        raise not_found("dataset", name)
    await asyncio.to_thread(shutil.rmtree, path)
    return web.json_response({"success": True, "deleted": name})


@routes.get("/training/datasets/{dataset_name}/images/{filename}")
@documented("One rendered image of a dataset (PNG)")
async def image(request: web.Request) -> web.StreamResponse:
    config = request.app[CONFIG]
    name = datasets.check_name(request.match_info["dataset_name"], "dataset_name")
    filename = request.match_info["filename"]
    if not IMAGE_NAME.fullmatch(filename):
        raise ProblemError(422, "image names look like <model_id>_<view>.png", field="filename")
    path = datasets.dataset_dir(config, name) / "images" / filename
    if not path.is_file():
        raise not_found("image", filename)
    return web.FileResponse(path, headers={"Content-Type": "image/png"})
