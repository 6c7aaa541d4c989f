"""Rendering routes: one model now, a batch of models, or a whole dataset as a job."""

from __future__ import annotations

import base64
import json
import re
import secrets
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from server import datasets
from server.apidoc import documented
from server.appkeys import CONFIG, RUNNER, STORE
from server.estimates import started_response
from server.hostinfo import host_info
from server.problems import ProblemError, conflict, not_found
from server.requests import read_body
from server.routes.datasets import IMAGE_NAME
from server.stagecalls import StageCallError, call_stage

routes = web.RouteTableDef()

DEFAULT_VIEWS = ["front", "top", "right"]
MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_BATCH_MODELS = 10_000
SINGLE_RENDER_TIMEOUT_S = 120.0


class RenderOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    views: list[str] = Field(default_factory=lambda: list(DEFAULT_VIEWS), min_length=1)
    resolution: StrictInt = 512
    composite: StrictBool = False


class DatasetRenderRequest(RenderOptions):
    batch_size: StrictInt = Field(default=100, ge=1, le=10_000)
    workers: StrictInt | None = Field(default=None, ge=1, le=256)


class RenderViewsRequest(RenderOptions):
    model: dict[str, Any] | None = None
    model_id: str | None = None
    dataset: str | None = None
    response: Literal["base64", "url"] = "base64"

    @model_validator(mode="after")
    def one_model(self) -> RenderViewsRequest:
        if (self.model is None) == (self.dataset is None):
            raise ValueError("give either 'model' (DeepCAD JSON) or 'dataset' and 'model_id'")
        if self.dataset is not None and not self.model_id:
            raise ValueError("'model_id' is required with 'dataset'")
        return self


class BatchRenderRequest(RenderOptions):
    models: list[dict[str, Any]] | None = Field(default=None, max_length=MAX_BATCH_MODELS)
    dataset: str | None = None
    model_ids: list[str] | None = Field(default=None, max_length=MAX_BATCH_MODELS)

    @model_validator(mode="after")
    def one_source(self) -> BatchRenderRequest:
        if (self.models is None) == (self.dataset is None):
            raise ValueError(
                "give either 'models' (DeepCAD JSON objects) or 'dataset' and 'model_ids'"
            )
        if self.dataset is not None and not self.model_ids:
            raise ValueError("'model_ids' is required with 'dataset'")
        if self.models is not None and not self.models:
            raise ValueError("'models' must not be empty")
        return self


async def check_render_options(app: web.Application, options: RenderOptions) -> None:
    rendering = (await host_info(app)).get("rendering") or {}
    if "error" in rendering or "views" not in rendering:
        raise ProblemError(
            503, f"rendering is not available on this host: {rendering.get('error', 'unknown')}"
        )
    known = rendering["views"]
    for index, view in enumerate(options.views):
        if view not in known:
            raise ProblemError(
                422,
                f"unknown view {view!r}; views are {', '.join(known)}",
                field=f"views.{index}",
                kind="invalid-value",
            )
    if len(set(options.views)) != len(options.views):
        raise ProblemError(422, "views must not repeat", field="views", kind="invalid-value")
    lo, hi = rendering["min_resolution"], rendering["max_resolution"]
    if not lo <= options.resolution <= hi:
        raise ProblemError(
            422,
            f"resolution must be between {lo} and {hi}",
            field="resolution",
            kind="invalid-value",
        )


def render_args(options: RenderOptions) -> list[str]:
    args = ["--views", ",".join(options.views), "--resolution", str(options.resolution)]
    return args + (["--composite"] if options.composite else [])


def images_per_model(options: RenderOptions) -> int:
    return len(options.views) + (1 if options.composite else 0)


def check_model_id(model_id: str, field: str) -> str:
    if not MODEL_ID.fullmatch(model_id):
        raise ProblemError(422, f"invalid model id {model_id!r}", field=field, kind="invalid-value")
    return model_id


def find_dataset_model(dataset_path: Path, model_id: str) -> Path:
    candidate = dataset_path / "cad_json" / model_id[:4] / f"{model_id}.json"
    if candidate.is_file():
        return candidate
    matches = list((dataset_path / "cad_json").rglob(f"{model_id}.json"))
    if not matches:
        raise not_found("model", model_id)
    return matches[0]


def renders_dir(app: web.Application) -> Path:
    return app[CONFIG].var_dir / "renders"


@routes.post("/training/datasets/{dataset_name}/render")
@documented("Render orthographic views of every model of a dataset", body=DatasetRenderRequest)
async def render_dataset(request: web.Request) -> web.Response:
    config, store = request.app[CONFIG], request.app[STORE]
    name = request.match_info["dataset_name"]
    manifest = datasets.load_manifest(config, name)
    body = await read_body(request, DatasetRenderRequest, required=False)
    await check_render_options(request.app, body)
    if (manifest.get("stages") or {}).get("extraction") != "completed":
        raise conflict(f"dataset {name!r} has not finished extraction")
    if await datasets.active_jobs(store, name):
        raise conflict(f"dataset {name!r} is in use by a running or queued job")
    models = (manifest.get("counts") or {}).get("models", 0)
    workers = body.workers or config.workers
    args = ["--input", str(datasets.dataset_dir(config, name)), *render_args(body)]
    args += ["--workers", str(workers)]
    job = await request.app[RUNNER].submit(
        "render", "render", args, body.model_dump(), dataset=name
    )
    return await started_response(
        store,
        job,
        items=models,
        models_to_process=models,
        images_to_create=models * images_per_model(body),
    )


@routes.post("/training/render-views")
@documented("Render one model's views now and return the images", body=RenderViewsRequest)
async def render_views(request: web.Request) -> web.Response:
    body = await read_body(request, RenderViewsRequest)
    await check_render_options(request.app, body)
    render_id = f"render_views_{secrets.token_hex(5)}"
    out = renders_dir(request.app) / render_id
    out.mkdir(parents=True)
    if body.model is not None:
        model_id = check_model_id(body.model_id or "model", "model_id")
        model_path = out / f"{model_id}.json"
        model_path.write_text(json.dumps(body.model))
    else:
        config = request.app[CONFIG]
        datasets.load_manifest(config, body.dataset)
        model_id = check_model_id(body.model_id, "model_id")
        model_path = find_dataset_model(datasets.dataset_dir(config, body.dataset), model_id)
    try:
        await call_stage(
            "stages.render",
            ["--model", str(model_path), "--output", str(out), *render_args(body)],
            timeout=SINGLE_RENDER_TIMEOUT_S,
        )
    except StageCallError as exc:
        detail = exc.payload.get("detail") or exc.payload.get("error") or exc.stderr
        raise ProblemError(
            422,
            f"the model could not be rendered: {detail}",
            field="model",
            kind="unbuildable-model",
            reason=exc.payload.get("error"),
        ) from exc
    views = []
    names = list(body.views) + (["composite"] if body.composite else [])
    for view in names:
        path = out / f"{model_id}_{view}.png"
        entry: dict[str, Any] = {"view": view, "width": body.resolution, "height": body.resolution}
        if view == "composite":
            entry["width"] = entry["height"] = None
        if body.response == "base64":
            entry["image_base64"] = base64.b64encode(path.read_bytes()).decode()
            entry["media_type"] = "image/png"
        entry["url"] = f"/training/renders/{render_id}/{path.name}"
        views.append(entry)
    return web.json_response(
        {
            "success": True,
            "render_id": render_id,
            "model_id": model_id,
            "resolution": body.resolution,
            "views": views,
        }
    )


@routes.post("/training/batch-render")
@documented("Start a render job over a list of models", body=BatchRenderRequest)
async def batch_render(request: web.Request) -> web.Response:
    config, store = request.app[CONFIG], request.app[STORE]
    body = await read_body(request, BatchRenderRequest)
    await check_render_options(request.app, body)
    batch_id = f"batch_{secrets.token_hex(5)}"
    if body.models is not None:
        root = renders_dir(request.app) / batch_id
        for index, model in enumerate(body.models):
            model_id = f"{index:08d}"
            path = root / "cad_json" / model_id[:4] / f"{model_id}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(model))
        args = ["--input", str(root)]
        count, dataset, images_url = len(body.models), None, f"/training/renders/{batch_id}/"
    else:
        datasets.load_manifest(config, body.dataset)
        ids = [check_model_id(m, f"model_ids.{i}") for i, m in enumerate(body.model_ids)]
        dataset_path = datasets.dataset_dir(config, body.dataset)
        for model_id in ids:
            find_dataset_model(dataset_path, model_id)
        args = ["--input", str(dataset_path), "--models", ",".join(ids)]
        count, dataset = len(ids), body.dataset
        images_url = f"/training/datasets/{body.dataset}/images/"
    args += [*render_args(body), "--workers", str(config.workers)]
    job = await request.app[RUNNER].submit(
        "batch_render", "render", args, body.model_dump(exclude={"models"}), dataset=dataset
    )
    return await started_response(
        store,
        job,
        items=count,
        rate_kind="render",
        models_to_process=count,
        images_to_create=count * images_per_model(body),
        images_url=images_url,
    )


@routes.get("/training/renders/{render_id}/{filename}")
@documented("An image made by render-views or an inline batch render (PNG)")
async def render_image(request: web.Request) -> web.StreamResponse:
    render_id, filename = request.match_info["render_id"], request.match_info["filename"]
    if not re.fullmatch(r"(render_views|batch)_[0-9a-f]{10}", render_id):
        raise not_found("render", render_id)
    if not IMAGE_NAME.fullmatch(filename):
        raise ProblemError(422, "image names look like <model_id>_<view>.png", field="filename")
    base = renders_dir(request.app) / render_id
    for path in (base / filename, base / "images" / filename):
        if path.is_file():
            return web.FileResponse(path, headers={"Content-Type": "image/png"})
    raise not_found("image", filename)
