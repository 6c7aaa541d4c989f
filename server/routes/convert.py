"""Conversion and validation: TinyLLaVA records for a dataset, or one record at a time.

Convert and validate run as jobs (id, progress, log) but the request waits for them and
answers with the finished result, because the spec's frontend reads their results straight
from the response; past the configured wait limit they answer 202 with the job to poll.
"""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from server import datasets
from server.apidoc import documented
from server.appkeys import CONFIG, RUNNER, STORE
from server.jobviews import progress_body
from server.problems import ProblemError, conflict
from server.requests import read_body
from server.routes.render import check_model_id, find_dataset_model, renders_dir
from server.stagecalls import StageCallError, call_stage
from server.store import Job

routes = web.RouteTableDef()

PAIR_TIMEOUT_S = 120.0


class ConvertRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["tinyllava"] = "tinyllava"
    randomize_templates: StrictBool = True
    layout: Literal["per_view", "composite", "iso"] = "per_view"
    seed: StrictInt = Field(default=0, ge=0, le=2**31 - 1)
    max_answer_tokens: StrictInt | None = Field(default=None, ge=16, le=1_000_000)


class ValidateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_answer_tokens: StrictInt | None = Field(default=None, ge=16, le=1_000_000)


class GeneratePairRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: dict[str, Any] | None = None
    model_id: str | None = None
    dataset: str | None = None
    view: str = "front"
    layout: Literal["per_view", "composite", "iso"] = "per_view"
    resolution: StrictInt = Field(default=512, ge=64, le=2048)
    seed: StrictInt = Field(default=0, ge=0, le=2**31 - 1)

    @model_validator(mode="after")
    def one_model(self) -> GeneratePairRequest:
        if (self.model is None) == (self.dataset is None):
            raise ValueError("give either 'model' (DeepCAD JSON) or 'dataset' and 'model_id'")
        if self.dataset is not None and not self.model_id:
            raise ValueError("'model_id' is required with 'dataset'")
        return self


class TrainingPairRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    record: dict[str, Any]
    dataset: str | None = None
    model: dict[str, Any] | None = None


async def wait_and_answer(request: web.Request, job: Job, shape: Any) -> web.Response:
    """Wait for a convert/validate job; answer with its result, or 202 past the wait limit."""
    finished = await request.app[RUNNER].wait(job.id, request.app[CONFIG].sync_wait_s)
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


async def _start_dataset_job(
    request: web.Request, kind: str, needs: str, args: list[str], params: dict[str, Any]
) -> tuple[str, Job]:
    config, store = request.app[CONFIG], request.app[STORE]
    name = request.match_info["dataset_name"]
    manifest = datasets.load_manifest(config, name)
    if (manifest.get("stages") or {}).get(needs) != "completed":
        verb = {"rendering": "rendered", "conversion": "converted"}[needs]
        raise conflict(f"dataset {name!r} is not {verb} yet", stage=needs)
    if await datasets.active_jobs(store, name):
        raise conflict(f"dataset {name!r} is in use by a running or queued job")
    path = datasets.dataset_dir(config, name)
    job = await request.app[RUNNER].submit(
        kind, kind, ["--dataset", str(path), *args], params, dataset=name
    )
    return name, job


@routes.post("/training/datasets/{dataset_name}/convert")
@documented("Write TinyLLaVA train.json and val.json for a rendered dataset", body=ConvertRequest)
async def convert(request: web.Request) -> web.Response:
    body = await read_body(request, ConvertRequest, required=False)
    args = ["--format", body.format, "--layout", body.layout, "--seed", str(body.seed)]
    args.append("--randomize-templates" if body.randomize_templates else "--no-randomize-templates")
    if body.max_answer_tokens:
        args += ["--max-answer-tokens", str(body.max_answer_tokens)]
    args += ["--workers", str(request.app[CONFIG].workers)]
    name, job = await _start_dataset_job(request, "convert", "rendering", args, body.model_dump())
    prefix = f"data/training/{name}"

    def shape(done: Job) -> dict[str, Any]:
        result = dict(done.result or {})
        output = {
            "train_file": f"{prefix}/train.json",
            "val_file": f"{prefix}/val.json",
            "train_conversations": result.pop("train_conversations", 0),
            "val_conversations": result.pop("val_conversations", 0),
        }
        result.pop("train_file", None), result.pop("val_file", None)
        output.update(result)
        return {"success": True, "job_id": done.id, "status": "completed", "output": output}

    return await wait_and_answer(request, job, shape)


@routes.post("/training/datasets/{dataset_name}/validate")
@documented("Check every record, image and answer of a converted dataset", body=ValidateRequest)
async def validate(request: web.Request) -> web.Response:
    body = await read_body(request, ValidateRequest, required=False)
    args = ["--workers", str(request.app[CONFIG].workers)]
    if body.max_answer_tokens:
        args += ["--max-answer-tokens", str(body.max_answer_tokens)]
    _, job = await _start_dataset_job(request, "validate", "conversion", args, body.model_dump())

    def shape(done: Job) -> dict[str, Any]:
        result = dict(done.result or {})
        return {
            "success": bool(result.get("valid")),
            "job_id": done.id,
            "status": "completed",
            "validation": result.get("validation", {}),
            "stats": result.get("stats", {}),
            "warnings": result.get("warnings", []),
            "problems": result.get("problems", []),
            **{
                k: v
                for k, v in result.items()
                if k not in ("validation", "stats", "warnings", "problems")
            },
        }

    return await wait_and_answer(request, job, shape)


def _work_dir(request: web.Request, prefix: str) -> tuple[str, Path]:
    work_id = f"{prefix}_{secrets.token_hex(5)}"
    path = renders_dir(request.app) / work_id
    path.mkdir(parents=True)
    return work_id, path


def _model_file(request: web.Request, body: Any, work: Path) -> tuple[str, Path]:
    if body.model is not None:
        model_id = check_model_id(body.model_id or "model", "model_id")
        path = work / f"{model_id}.json"
        path.write_text(json.dumps(body.model))
        return model_id, path
    config = request.app[CONFIG]
    datasets.load_manifest(config, body.dataset)
    model_id = check_model_id(body.model_id, "model_id")
    return model_id, find_dataset_model(datasets.dataset_dir(config, body.dataset), model_id)


def _stage_problem(exc: StageCallError, field: str, what: str) -> ProblemError:
    detail = exc.payload.get("detail") or exc.payload.get("error") or exc.stderr
    if exc.returncode == 2:
        return ProblemError(
            422,
            f"{what}: {detail}",
            field=field,
            kind="invalid-value",
            reason=exc.payload.get("error"),
        )
    return ProblemError(500, f"{what}: {detail}")


@routes.post("/training/generate-pair")
@documented("One training record (image and conversation) for one model", body=GeneratePairRequest)
async def generate_pair(request: web.Request) -> web.Response:
    body = await read_body(request, GeneratePairRequest)
    work_id, work = _work_dir(request, "render_views")
    model_id, model_path = _model_file(request, body, work)
    args = ["--model", str(model_path), "--output", str(work), "--view", body.view]
    args += [
        "--layout",
        body.layout,
        "--resolution",
        str(body.resolution),
        "--seed",
        str(body.seed),
    ]
    try:
        pair = await call_stage("stages.convert.pair", args, timeout=PAIR_TIMEOUT_S)
    except StageCallError as exc:
        raise _stage_problem(exc, "model", "no training pair could be made") from exc
    image_path = Path(pair.get("image_path", ""))
    if not image_path.is_absolute():
        image_path = work / image_path
    image = {
        "url": f"/training/renders/{work_id}/{image_path.name}",
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
@documented("Validate one training record", body=TrainingPairRequest)
async def validate_pair(request: web.Request) -> web.Response:
    body = await read_body(request, TrainingPairRequest)
    _, work = _work_dir(request, "pair")
    record_path = work / "record.json"
    record_path.write_text(json.dumps(body.record))
    args = ["--record", str(record_path)]
    if body.dataset is not None:
        config = request.app[CONFIG]
        datasets.load_manifest(config, body.dataset)
        args += ["--images", str(datasets.dataset_dir(config, body.dataset) / "images")]
    if body.model is not None:
        model_path = work / "model.json"
        model_path.write_text(json.dumps(body.model))
        args += ["--model", str(model_path)]
    try:
        result = await call_stage("stages.validate.pair", args, timeout=PAIR_TIMEOUT_S)
    except StageCallError as exc:
        raise _stage_problem(exc, "record", "the record could not be read") from exc
    return web.json_response({"success": True, **result})
