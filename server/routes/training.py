"""Training routes: the quick test-run, its results, the full LoRA fine-tune and its status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from server import datasets
from server.apidoc import documented
from server.appkeys import CONFIG, RUNNER, STORE
from server.estimates import started_response
from server.jobviews import human_duration, percentage, remaining_seconds
from server.problems import ProblemError, conflict, not_found
from server.requests import read_body
from server.routes.jobs import get_job_or_404
from server.runner import new_job_id
from server.stagecalls import check_or_422
from server.store import Job

routes = web.RouteTableDef()

Device = Literal["auto", "cpu", "cuda", "mps"]
TRAINING_KINDS = ("training", "training_test")


class TestRunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str
    train_samples: StrictInt = Field(default=100, ge=1, le=1_000_000)
    val_samples: StrictInt = Field(default=20, ge=1, le=1_000_000)
    epochs: StrictInt = Field(default=5, ge=1, le=1000)
    device: Device = "auto"
    base_model: str = "tiny"
    batch_size: StrictInt = Field(default=4, ge=1, le=1024)
    learning_rate: float | None = Field(default=None, gt=0, le=1)
    lora_r: StrictInt = Field(default=16, ge=1, le=1024)
    lora_alpha: StrictInt = Field(default=32, ge=1, le=4096)
    seed: StrictInt = Field(default=0, ge=0, le=2**31 - 1)


class TrainConfig(BaseModel):
    """Every field optional; the defaults follow OpenECAD's own LoRA recipe."""

    model_config = ConfigDict(extra="forbid")

    base_model: str = "tiny"
    use_lora: StrictBool = True
    lora_r: StrictInt = Field(default=128, ge=1, le=1024)
    lora_alpha: StrictInt = Field(default=256, ge=1, le=4096)
    lora_dropout: float = Field(default=0.05, ge=0, lt=1)
    lora_vision: StrictBool = False
    epochs: StrictInt = Field(default=3, ge=1, le=1000)
    batch_size: StrictInt = Field(default=4, ge=1, le=1024)
    gradient_accumulation: StrictInt = Field(default=1, ge=1, le=1024)
    learning_rate: float = Field(default=1e-4, gt=0, le=1)
    warmup_ratio: float = Field(default=0.03, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0, le=1)
    max_grad_norm: float = Field(default=1.0, gt=0)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    gradient_checkpointing: StrictBool = False
    device: Device = "auto"
    save_every_steps: StrictInt | None = Field(default=None, ge=1)
    keep_last: StrictInt = Field(default=3, ge=1, le=100)
    train_samples: StrictInt | None = Field(default=None, ge=1)
    val_samples: StrictInt | None = Field(default=None, ge=1)
    seed: StrictInt = Field(default=0, ge=0, le=2**31 - 1)


class TrainStartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str
    config: TrainConfig = Field(default_factory=TrainConfig)


def _record_count(path: Path) -> int:
    try:
        with open(path, encoding="utf-8") as f:
            return len(json.load(f))
    except (OSError, ValueError):
        return 0


async def _prepare(request: web.Request, dataset: str, base_model: str, device: str) -> Path:
    """The dataset must be converted; base model and device are checked before any job."""
    config = request.app[CONFIG]
    manifest = datasets.load_manifest(config, datasets.check_name(dataset, "dataset"))
    if (manifest.get("stages") or {}).get("conversion") != "completed":
        raise conflict(f"dataset {dataset!r} is not converted yet", stage="conversion")
    path = datasets.dataset_dir(config, dataset)
    await check_or_422(
        "stages.train.preflight",
        ["--base-model", base_model, "--device", device, "--dataset", str(path)],
        "base_model",
    )
    return path


def _check_samples(path: Path, train: int | None, val: int | None) -> tuple[int, int]:
    available_train = _record_count(path / "train.json")
    available_val = _record_count(path / "val.json")
    for field, wanted, available in (
        ("train_samples", train, available_train),
        ("val_samples", val, available_val),
    ):
        if wanted is not None and wanted > available:
            raise ProblemError(
                422,
                f"{field} {wanted} is more than the dataset's {available} records",
                field=field,
                kind="invalid-value",
            )
    return train or available_train, val or available_val


def _checkpoint_dir(request: web.Request, dataset: str, job_id: str) -> Path:
    return request.app[CONFIG].checkpoints_root / dataset / job_id


@routes.post("/training/test-run")
@documented("A short LoRA training run that shows whether the loss falls", body=TestRunRequest)
async def test_run(request: web.Request) -> web.Response:
    body = await read_body(request, TestRunRequest)
    path = await _prepare(request, body.dataset, body.base_model, body.device)
    train, val = _check_samples(path, body.train_samples, body.val_samples)
    job_id = new_job_id("training_test")
    out = _checkpoint_dir(request, body.dataset, job_id)
    args = [
        "--dataset", str(path), "--output", str(out), "--mode", "test-run",
        "--train-samples", str(train), "--val-samples", str(val),
        "--epochs", str(body.epochs), "--batch-size", str(body.batch_size),
        "--base-model", body.base_model, "--device", body.device,
        "--lora-r", str(body.lora_r), "--lora-alpha", str(body.lora_alpha),
        "--seed", str(body.seed),
    ]  # fmt: skip
    if body.learning_rate:
        args += ["--learning-rate", str(body.learning_rate)]
    job = await request.app[RUNNER].submit(
        "training_test", "train", args, body.model_dump(), dataset=body.dataset, slot="gpu",
        job_id=job_id,
    )  # fmt: skip
    return await started_response(
        request.app[STORE],
        job,
        items=body.epochs * -(-train // body.batch_size),
        location=f"/training/test-run/{job.id}/results",
        checkpoint_dir=str(Path("checkpoints") / body.dataset / job.id),
    )


def _loss_progression(metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"epoch": m["epoch"], "train_loss": m.get("train_loss"), "val_loss": m.get("val_loss")}
        for m in metrics
        if m.get("kind") == "epoch"
    ]


async def _metrics(request: web.Request, job: Job) -> list[dict[str, Any]]:
    await request.app[RUNNER].flush_job(job.id)
    rows = await request.app[STORE].events_after(job.id, event="metric", limit=1_000_000)
    return [data for _seq, _event, data, _ts in rows]


async def _training_job(request: web.Request, kinds: tuple[str, ...]) -> Job:
    job = await get_job_or_404(request)
    if job.kind not in kinds:
        raise not_found("training job", job.id)
    return job


@routes.get("/training/test-run/{job_id}/results")
@documented("Results of a test-run: loss per epoch, improvement, convergence, throughput")
async def test_run_results(request: web.Request) -> web.Response:
    job = await _training_job(request, ("training_test",))
    if job.status == "completed" and job.result:
        results = job.result
    else:  # what is known so far, from the metric events
        results = {"loss_progression": _loss_progression(await _metrics(request, job))}
    return web.json_response(
        {"job_id": job.id, "status": job.status, "results": results, "error": job.error}
    )


@routes.post("/training/start")
@documented("Start the full LoRA fine-tune of a converted dataset", body=TrainStartRequest)
async def start_training(request: web.Request) -> web.Response:
    body = await read_body(request, TrainStartRequest)
    cfg = body.config
    if not cfg.use_lora:
        raise ProblemError(
            422,
            "only LoRA fine-tuning is supported; set use_lora to true",
            field="config.use_lora",
            kind="invalid-value",
        )
    path = await _prepare(request, body.dataset, cfg.base_model, cfg.device)
    train, val = _check_samples(path, cfg.train_samples, cfg.val_samples)
    job_id = new_job_id("training")
    out = _checkpoint_dir(request, body.dataset, job_id)
    args = [
        "--dataset", str(path), "--output", str(out), "--mode", "full",
        "--train-samples", str(train), "--val-samples", str(val),
        "--epochs", str(cfg.epochs), "--batch-size", str(cfg.batch_size),
        "--grad-accum", str(cfg.gradient_accumulation),
        "--learning-rate", str(cfg.learning_rate), "--warmup-ratio", str(cfg.warmup_ratio),
        "--weight-decay", str(cfg.weight_decay), "--max-grad-norm", str(cfg.max_grad_norm),
        "--lora-r", str(cfg.lora_r), "--lora-alpha", str(cfg.lora_alpha),
        "--lora-dropout", str(cfg.lora_dropout), "--base-model", cfg.base_model,
        "--device", cfg.device, "--precision", cfg.precision, "--keep-last", str(cfg.keep_last),
        "--seed", str(cfg.seed),
    ]  # fmt: skip
    if cfg.lora_vision:
        args.append("--lora-vision")
    if cfg.gradient_checkpointing:
        args.append("--gradient-checkpointing")
    if cfg.save_every_steps:
        args += ["--save-every-steps", str(cfg.save_every_steps)]
    job = await request.app[RUNNER].submit(
        "training", "train", args, body.model_dump(), dataset=body.dataset, slot="gpu",
        job_id=job_id,
    )  # fmt: skip
    return await started_response(
        request.app[STORE],
        job,
        items=cfg.epochs * -(-train // (cfg.batch_size * cfg.gradient_accumulation)),
        location=f"/training/{job.id}/status",
        checkpoint_dir=str(Path("checkpoints") / body.dataset / job.id),
    )


@routes.get("/training/{job_id}/status")
@documented("Training progress: epoch, step, losses, learning rate, time remaining")
async def training_status(request: web.Request) -> web.Response:
    job = await _training_job(request, TRAINING_KINDS)
    extra = job.progress.get("extra") or {}
    metrics = await _metrics(request, job)
    step_losses = [
        m["train_loss"]
        for m in metrics
        if m.get("kind") != "epoch" and m.get("train_loss") is not None
    ]
    val_losses = [m["val_loss"] for m in metrics if m.get("val_loss") is not None]
    last = metrics[-1] if metrics else {}
    remaining = remaining_seconds(job)
    return web.json_response(
        {
            "job_id": job.id,
            "status": "training" if job.status == "running" else job.status,
            "progress": {
                "current_epoch": extra.get("epoch", 0),
                "total_epochs": extra.get(
                    "total_epochs", job.params.get("config", {}).get("epochs")
                ),
                "current_step": extra.get("step", job.progress.get("current") or 0),
                "total_steps": extra.get("total_steps", job.progress.get("total") or 0),
                "percentage": percentage(job),
            },
            "metrics": {
                "current_loss": step_losses[-1] if step_losses else None,
                "best_loss": min(step_losses) if step_losses else None,
                "val_loss": val_losses[-1] if val_losses else None,
                "best_val_loss": min(val_losses) if val_losses else None,
                "learning_rate": last.get("lr"),
                "samples_per_s": last.get("samples_per_s"),
            },
            "estimated_remaining": human_duration(remaining),
            "estimated_remaining_s": None if remaining is None else round(remaining, 1),
            "checkpoint_dir": str(Path("checkpoints") / (job.dataset or "") / job.id),
            "result": job.result,
            "error": job.error,
        }
    )
