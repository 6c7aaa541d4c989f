"""Training routes: the quick test-run, its results, the full LoRA fine-tune and its status.

The training stage owns every default and every check of a training request: the route runs
its preflight with exactly the flags the caller set, and gets back the resolved run (the
mode's defaults filled in) or a 422 naming the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from server import dataset_registry as registry
from server.appkeys import CONFIG, RUNNER, STORE
from server.bodies.base import StageBody
from server.bodies.training import TestRunRequest, TrainStartRequest
from server.http.estimates import started_response
from server.http.jobviews import human_duration, percentage, remaining_seconds
from server.http.lookups import job_or_404
from server.http.openapi import documented
from server.http.problems import invalid
from server.http.requests import read_body
from server.jobs.live import new_job_id
from server.jobs.store import Job
from server.stagecalls import check_or_422
from stages.torchrun import Launch

routes = web.RouteTableDef()

TRAINING_KINDS = ("training", "training_test")
RESUME = ["--resume"]
MODES = {"training_test": ("test-run", ""), "training": ("full", "config.")}  # mode, field prefix


async def _preflight(
    request: web.Request, dataset: str, mode: str, flags: list[str], prefix: str = ""
) -> tuple[Path, dict[str, Any]]:
    """The dataset must be converted; the stage checks the rest and resolves the run."""
    config = request.app[CONFIG]
    path = registry.ready_for_stage(config, dataset, "conversion", "dataset")
    report = await check_or_422(
        config,
        "train.preflight",
        ["--dataset", str(path), "--mode", mode, *flags],
        f"{prefix}base_model",
        prefix,
    )
    resolved = report.get("config") or {}
    return path, resolved


async def _submit_training(
    request: web.Request,
    kind: str,
    dataset: str,
    body: TestRunRequest | TrainStartRequest,
    flags_from: StageBody | None = None,
) -> tuple[Job, dict[str, Any]]:
    """Hold the dataset, preflight the run and queue it on the GPU slot (resumable)."""
    name = registry.check_name(dataset, "dataset")
    mode, prefix = MODES[kind]
    flags = (flags_from or body).to_args()
    job_id = new_job_id(kind)
    launch = _launch(request, flags_from or body, job_id, prefix)
    async with request.app[STORE].reserved(name, job_id):
        path, resolved = await _preflight(request, name, mode, flags, prefix)
        out = _checkpoint_dir(request, name, job_id)
        args = ["--dataset", str(path), "--output", str(out), "--mode", mode, *flags]
        params = {**body.model_dump(exclude_none=True), "resolved": resolved}
        if launch.distributed:  # the runner starts it under torchrun, on as many gpu slots
            params["launch"] = launch.as_json()
        job = await request.app[RUNNER].submit(
            kind, "train", args, params, dataset=name, slot="gpu", job_id=job_id,
            resume_args=RESUME,
        )  # fmt: skip
    return job, resolved


def _launch(request: web.Request, body: StageBody, job_id: str, prefix: str) -> Launch:
    """The torchrun launch a request asks for. A job takes a gpu slot per process on this
    node, so it may ask for at most the configured slots (the stage's preflight refuses more
    processes than the host has GPUs when it trains on CUDA)."""
    gpus = getattr(body, "gpus", None) or 1
    slots = request.app[CONFIG].gpu_slots
    if gpus > slots:
        raise invalid(
            f"{prefix}gpus",
            f"{gpus} processes need {gpus} gpu slots; this service has {slots} (--gpu-slots)",
        )
    nnodes = getattr(body, "nnodes", None) or 1
    endpoint = getattr(body, "rdzv_endpoint", None)
    if nnodes > 1 and not endpoint:
        raise invalid(f"{prefix}rdzv_endpoint", "a run on several nodes needs host:port")
    return Launch(gpus, nnodes, endpoint if nnodes > 1 else None, job_id if nnodes > 1 else None)


def _steps(resolved: dict[str, Any]) -> int:
    per_step = (
        int(resolved.get("batch_size") or 1)
        * int(resolved.get("gradient_accumulation") or 1)
        * int(resolved.get("gpus") or 1)
    )
    return int(resolved.get("epochs") or 1) * -(
        -int(resolved.get("train_samples") or 0) // per_step
    )


def _checkpoint_dir(request: web.Request, dataset: str, job_id: str) -> Path:
    return request.app[CONFIG].checkpoints_root / dataset / job_id


@routes.post("/training/test-run")
@documented(
    "A short LoRA training run that shows whether the loss falls",
    body=TestRunRequest,
    status=202,
    errors=(404, 409, 504),
)
async def test_run(request: web.Request) -> web.Response:
    body = await read_body(request, TestRunRequest)
    job, resolved = await _submit_training(request, "training_test", body.dataset, body)
    return await started_response(
        request.app[STORE],
        job,
        items=_steps(resolved),
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
    await request.app[RUNNER].flush()
    rows = await request.app[STORE].events_after(job.id, event="metric", limit=1_000_000)
    return [data for _seq, _event, data, _ts in rows]


@routes.get("/training/test-run/{job_id}/results")
@documented("Results of a test-run: loss per epoch, improvement, convergence, throughput")
async def test_run_results(request: web.Request) -> web.Response:
    job = await job_or_404(request, ("training_test",), "training job")
    if job.status == "completed" and job.result:
        results = job.result
    else:  # what is known so far, from the metric events
        results = {"loss_progression": _loss_progression(await _metrics(request, job))}
    return web.json_response(
        {"job_id": job.id, "status": job.status, "results": results, "error": job.error}
    )


@routes.post("/training/start")
@documented(
    "Start the full LoRA fine-tune of a converted dataset",
    body=TrainStartRequest,
    status=202,
    errors=(404, 409, 504),
)
async def start_training(request: web.Request) -> web.Response:
    body = await read_body(request, TrainStartRequest)
    cfg = body.config
    if not cfg.use_lora:
        raise invalid("config.use_lora", "only LoRA fine-tuning is supported; set use_lora to true")
    job, resolved = await _submit_training(request, "training", body.dataset, body, cfg)
    return await started_response(
        request.app[STORE],
        job,
        items=_steps(resolved),
        location=f"/training/{job.id}/status",
        checkpoint_dir=str(Path("checkpoints") / body.dataset / job.id),
    )


@routes.get("/training/{job_id}/status")
@documented("Training progress: epoch, step, losses, learning rate, time remaining")
async def training_status(request: web.Request) -> web.Response:
    job = await job_or_404(request, TRAINING_KINDS, "training job")
    extra = job.progress.get("extra") or {}
    metrics = await _metrics(request, job)
    step_losses = [
        m["train_loss"]
        for m in metrics
        if m.get("kind") != "epoch" and m.get("train_loss") is not None
    ]
    val_losses = [m["val_loss"] for m in metrics if m.get("val_loss") is not None]
    evaluations = [m for m in metrics if m.get("kind") == "evaluation"]
    trained = [m for m in metrics if m.get("kind") != "evaluation"]
    last = trained[-1] if trained else {}
    remaining = remaining_seconds(job)
    return web.json_response(
        {
            "job_id": job.id,
            "status": "training" if job.status == "running" else job.status,
            "progress": {
                "current_epoch": extra.get("epoch", 0),
                "total_epochs": extra.get(
                    "total_epochs", (job.params.get("resolved") or {}).get("epochs")
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
            # Scores of generated code (the best checkpoint at the end, and every N epochs
            # when asked): invalid ratio, IoU, Chamfer, as the evaluation endpoints report.
            "evaluation": evaluations[-1] if evaluations else None,
            "evaluations": evaluations,
            "best_checkpoint": (job.result or {}).get("best_checkpoint"),
            "estimated_remaining": human_duration(remaining),
            "estimated_remaining_s": None if remaining is None else round(remaining, 1),
            "checkpoint_dir": str(Path("checkpoints") / (job.dataset or "") / job.id),
            "result": job.result,
            "error": job.error,
        }
    )
