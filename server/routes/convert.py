"""Conversion and validation: TinyLLaVA records for a dataset, or one record at a time.

Convert and validate run as jobs (id, progress, log) but the request waits for them and
answers with the finished result, because the spec's frontend reads their results straight
from the response; past the configured wait limit they answer 202 with the job to poll.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from server import dataset_registry as registry
from server.appkeys import CONFIG, RUNNER, STORE
from server.bodies.base import StageBody
from server.bodies.records import (
    ConvertRequest,
    GeneratePairRequest,
    TrainingPairRequest,
    ValidateRequest,
)
from server.executors import executor_args
from server.http.jobviews import progress_body, public_job
from server.http.openapi import documented
from server.http.redact import redactor_for
from server.http.renderer import check_resolution, check_view, rendering_limits
from server.http.requests import read_body
from server.jobs.live import new_job_id
from server.jobs.store import Job
from server.scratch import ScratchDir
from server.stagecalls import StageCallError, call_stage, stage_problem
from stages.dataset.layout import RECORD_FILES, images_dir

routes = web.RouteTableDef()

PAIR_TIMEOUT_S = 120.0
ResultShape = Callable[[Job], dict[str, Any]]


async def wait_and_answer(request: web.Request, job: Job, shape: ResultShape) -> web.Response:
    """Wait for a convert/validate job; answer with its result, or 202 past the wait limit."""
    config = request.app[CONFIG]
    finished = await request.app[RUNNER].wait(job.id, config.sync_wait_s)
    if finished is not None:
        finished = public_job(finished, redactor_for(config))
    if finished is None or not finished.terminal:
        body = progress_body(finished or job)
        body.update(success=True, status="running")
        return web.json_response(
            body, status=202, headers={"Location": f"/training/jobs/{job.id}/progress"}
        )
    if finished.status != "completed":
        return web.json_response(
            {"success": False, "job_id": job.id, "status": finished.status, "error": finished.error}
        )
    return web.json_response(shape(finished))


async def run_dataset_stage(
    request: web.Request, kind: str, needs: str, body: StageBody, shape: ResultShape
) -> web.Response:
    config = request.app[CONFIG]
    name = request.match_info["dataset_name"]
    registry.load_manifest(config, name)
    job_id = new_job_id(kind)
    async with request.app[STORE].reserved(name, job_id):
        path = registry.ready_for_stage(config, name, needs)
        args = ["--dataset", str(path), *body.to_args(), "--workers", str(config.workers)]
        args += await executor_args(config, body, path)
        job = await request.app[RUNNER].submit(
            kind, kind, args, body.model_dump(), dataset=name, job_id=job_id
        )
    return await wait_and_answer(request, job, shape)


@routes.post("/training/datasets/{dataset_name}/convert")
@documented(
    "Write TinyLLaVA train.json and val.json for a rendered dataset",
    body=ConvertRequest,
    status=(200, 202),
    errors=(409,),
)
async def convert(request: web.Request) -> web.Response:
    body = await read_body(request, ConvertRequest, required=False)
    prefix = f"data/training/{request.match_info['dataset_name']}"

    def shape(done: Job) -> dict[str, Any]:
        result = dict(done.result or {})
        output = {
            "train_file": f"{prefix}/{RECORD_FILES['train']}",
            "val_file": f"{prefix}/{RECORD_FILES['val']}",
            "train_conversations": result.pop("train_conversations", 0),
            "val_conversations": result.pop("val_conversations", 0),
        }
        result.pop("train_file", None), result.pop("val_file", None)
        output.update(result)
        return {"success": True, "job_id": done.id, "status": "completed", "output": output}

    return await run_dataset_stage(request, "convert", "rendering", body, shape)


@routes.post("/training/datasets/{dataset_name}/validate")
@documented(
    "Check every record, image and answer of a converted dataset",
    body=ValidateRequest,
    status=(200, 202),
    errors=(409,),
)
async def validate(request: web.Request) -> web.Response:
    body = await read_body(request, ValidateRequest, required=False)

    def shape(done: Job) -> dict[str, Any]:
        result = dict(done.result or {})
        listed = ("validation", "stats", "warnings", "problems")
        return {
            "success": bool(result.get("valid")),
            "job_id": done.id,
            "status": "completed",
            "validation": result.get("validation", {}),
            "stats": result.get("stats", {}),
            "warnings": result.get("warnings", []),
            "problems": result.get("problems", []),
            **{k: v for k, v in result.items() if k not in listed},
        }

    return await run_dataset_stage(request, "validate", "conversion", body, shape)


@routes.post("/training/generate-pair")
@documented(
    "One training record (image and conversation) for one model",
    body=GeneratePairRequest,
    errors=(404, 504),
)
async def generate_pair(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    body = await read_body(request, GeneratePairRequest)
    rendering = await rendering_limits(request.app)
    check_view(rendering, body.view, "view")
    check_resolution(rendering, body.resolution)
    model_id, model_path = registry.requested_model(config, body)
    with ScratchDir(config.renders_dir, "render_views") as work:
        if model_path is None:
            model_path = work.path / f"{model_id}.json"
            model_path.write_text(json.dumps(body.model))
        args = ["--model", str(model_path), "--output", str(work.path), *body.to_args()]
        try:
            pair = await call_stage(config, "convert.pair", args, timeout=PAIR_TIMEOUT_S)
        except StageCallError as exc:
            raise stage_problem(exc, "model", what="no training pair could be made") from exc
    image_path = Path(pair.get("image_path", ""))
    if not image_path.is_absolute():
        image_path = work.path / image_path
    image = {
        "url": f"/training/renders/{work.id}/{image_path.name}",
        "media_type": "image/png",
        "image_base64": base64.b64encode(image_path.read_bytes()).decode()
        if image_path.is_file()
        else None,
    }
    return web.json_response(
        {"success": True, "model_id": model_id, "record": pair.get("record"), "image": image,
         "code": pair.get("code")}
    )  # fmt: skip


@routes.post("/validation/training-pair")
@documented("Validate one training record", body=TrainingPairRequest, errors=(404, 504))
async def validate_pair(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    body = await read_body(request, TrainingPairRequest)
    args: list[str] = []
    if body.dataset is not None:
        registry.load_manifest(config, body.dataset, "dataset")
        args += ["--images", str(images_dir(registry.dataset_dir(config, body.dataset)))]
    with ScratchDir(config.renders_dir, "pair") as work:
        record_path = work.path / "record.json"
        record_path.write_text(json.dumps(body.record))
        args += ["--record", str(record_path)]
        if body.model is not None:
            model_path = work.path / "model.json"
            model_path.write_text(json.dumps(body.model))
            args += ["--model", str(model_path)]
        try:
            result = await call_stage(config, "validate.pair", args, timeout=PAIR_TIMEOUT_S)
        except StageCallError as exc:
            raise stage_problem(exc, "record", what="the record could not be read") from exc
        finally:
            shutil.rmtree(work.path, ignore_errors=True)
    return web.json_response({"success": True, **result})
