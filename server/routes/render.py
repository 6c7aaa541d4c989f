"""Rendering routes: one model now, a batch of models, or a whole dataset as a job."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
from pathlib import Path
from typing import Any

from aiohttp import web

from server import dataset_registry as registry
from server.appkeys import CONFIG, RUNNER, STORE
from server.bodies.render import (
    BatchRenderRequest,
    DatasetRenderRequest,
    RenderOptions,
    RenderViewsRequest,
)
from server.executors import executor_args
from server.http.estimates import started_response
from server.http.lookups import image_or_404
from server.http.openapi import documented
from server.http.problems import not_found
from server.http.renderer import checked_views
from server.http.requests import read_body
from server.jobs.live import new_job_id
from server.scratch import ScratchDir
from server.stagecalls import StageCallError, call_stage, stage_problem
from stages.dataset.layout import image_file_name, images_dir, model_file

routes = web.RouteTableDef()

SINGLE_RENDER_TIMEOUT_S = 120.0
COMPOSITE = "composite"
SCRATCH_ID = re.compile(r"(render_views|batch)_[0-9a-f]{10}")


def images_per_model(views: list[str], options: RenderOptions) -> int:
    return len(views) + (1 if options.composite else 0)


@routes.post("/training/datasets/{dataset_name}/render")
@documented(
    "Render orthographic views of every model of a dataset",
    body=DatasetRenderRequest,
    status=202,
    errors=(409,),
)
async def render_dataset(request: web.Request) -> web.Response:
    config, store = request.app[CONFIG], request.app[STORE]
    name = request.match_info["dataset_name"]
    registry.load_manifest(config, name)
    body = await read_body(request, DatasetRenderRequest, required=False)
    views = await checked_views(request.app, body)
    job_id = new_job_id("render")
    async with store.reserved(name, job_id):
        path = registry.ready_for_stage(config, name, "extraction")
        models = registry.model_count(config, name)
        args = ["--input", str(path), *body.model_copy(update={"views": views}).to_args()]
        if body.workers is None:
            args += ["--workers", str(config.workers)]
        args += await executor_args(config, body, path)
        job = await request.app[RUNNER].submit(
            "render", "render", args, body.model_dump(), dataset=name, job_id=job_id,
            resume_args=[],
        )  # fmt: skip
    return await started_response(
        store,
        job,
        items=models,
        models_to_process=models,
        images_to_create=models * images_per_model(views, body),
    )


@routes.post("/training/render-views")
@documented(
    "Render one model's views now and return the images",
    body=RenderViewsRequest,
    errors=(404, 504),
)
async def render_views(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    body = await read_body(request, RenderViewsRequest)
    views = await checked_views(request.app, body)
    model_id, model_path = registry.requested_model(config, body)
    with ScratchDir(config.renders_dir, "render_views") as work:
        render_id, out = work.id, work.path
        if model_path is None:
            model_path = out / f"{model_id}.json"
            model_path.write_text(json.dumps(body.model))
        options = body.model_copy(update={"views": views}).to_args()
        try:
            await call_stage(
                config,
                "render",
                ["--model", str(model_path), "--output", str(out), *options],
                timeout=SINGLE_RENDER_TIMEOUT_S,
            )
        except StageCallError as exc:
            raise stage_problem(
                exc, "model", what="the model could not be rendered", kind="unbuildable-model"
            ) from exc
    entries = []
    for view in [*views, *([COMPOSITE] if body.composite else [])]:
        path = out / image_file_name(model_id, view)
        side = None if view == COMPOSITE else body.resolution
        entry: dict[str, Any] = {"view": view, "width": side, "height": side}
        if body.response == "base64":
            entry["image_base64"] = base64.b64encode(path.read_bytes()).decode()
            entry["media_type"] = "image/png"
        entry["url"] = f"/training/renders/{render_id}/{path.name}"
        entries.append(entry)
    return web.json_response(
        {
            "success": True,
            "render_id": render_id,
            "model_id": model_id,
            "resolution": body.resolution,
            "views": entries,
        }
    )


@routes.post("/training/batch-render")
@documented(
    "Start a render job over a list of models",
    body=BatchRenderRequest,
    status=202,
    errors=(404, 409),
)
async def batch_render(request: web.Request) -> web.Response:
    config, store = request.app[CONFIG], request.app[STORE]
    body = await read_body(request, BatchRenderRequest)
    views = await checked_views(request.app, body)
    if body.models is not None:
        with ScratchDir(config.renders_dir, "batch") as work:
            batch_id, root = work.id, work.path
            # Up to MAX_BATCH_MODELS files: seconds of writing, off the event loop.
            await asyncio.to_thread(_write_models, root, body.models)
        args = ["--input", str(root)]
        count, dataset, images_url = len(body.models), None, f"/training/renders/{batch_id}/"
    else:
        name = body.dataset or ""
        ids = body.model_ids or []
        args = ["--input", str(registry.dataset_dir(config, name)), "--models", ",".join(ids)]
        count, dataset, images_url = len(ids), name, f"/training/datasets/{name}/images/"
    args += [*body.model_copy(update={"views": views}).to_args(), "--workers", str(config.workers)]
    job_id = new_job_id("batch_render")
    async with store.reserved(dataset, job_id) if dataset else contextlib.nullcontext():
        for index, model_id in enumerate(body.model_ids or []):
            registry.dataset_model(config, dataset or "", model_id, f"model_ids.{index}")
        job = await request.app[RUNNER].submit(
            "batch_render", "render", args, body.model_dump(exclude={"models"}),
            dataset=dataset, job_id=job_id, resume_args=[],
        )  # fmt: skip
    return await started_response(
        store,
        job,
        items=count,
        rate_kind="render",
        models_to_process=count,
        images_to_create=count * images_per_model(views, body),
        images_url=images_url,
    )


def _write_models(root: Path, models: list[dict[str, Any]]) -> None:
    for index, model in enumerate(models):
        path = model_file(root, f"{index:08d}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(model))


@routes.get("/training/renders/{render_id}/{filename}")
@documented("An image made by render-views or an inline batch render (PNG)", media_type="image/png")
async def render_image(request: web.Request) -> web.StreamResponse:
    render_id, filename = request.match_info["render_id"], request.match_info["filename"]
    if not SCRATCH_ID.fullmatch(render_id):
        raise not_found("render", render_id)
    base = request.app[CONFIG].renders_dir / render_id
    return image_or_404(registry.check_image_name(filename), base, images_dir(base))
