"""Evaluation routes: score a checkpoint on a dataset's records as a job, then read its summary
and every sample beside the reference, so two checkpoints can be compared on the same records.

The job runs ``stages.train.evaluate`` into ``<var>/evaluations/<job id>/``: ``samples.jsonl``
(one scored generation per record, written as it goes, so a resumed job skips what is done)
and ``images/`` (the views of each generated solid, drawn as the dataset's images are).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from aiohttp import web

from server import checkpoints
from server import dataset_registry as registry
from server.appkeys import CONFIG, RUNNER, STORE
from server.bodies.evaluation import EvaluateRequest
from server.http.estimates import started_response
from server.http.jobviews import iso, progress_body
from server.http.lookups import image_or_404, job_or_404
from server.http.openapi import documented
from server.http.renderer import check_view, rendering_limits
from server.http.requests import query_int, read_body
from server.jobs.live import new_job_id
from server.jobs.store import Job
from server.stagecalls import check_or_422

routes = web.RouteTableDef()

KIND = "evaluation"
SAMPLES_FILE = "samples.jsonl"
IMAGES = "images"
DEFAULT_SAMPLES = 50  # the stage's own default, for the time estimate
SUMMARY_KEYS = ("count", "invalid_ratio", "parse_rate", "iou", "chamfer", "curve_accuracy",
                "loop_accuracy", "records_per_s")  # fmt: skip


PAGING = {
    "limit": {"type": "integer", "minimum": 1, "maximum": 500},
    "offset": {"type": "integer", "minimum": 0},
}


def evaluation_dir(request: web.Request, job_id: str) -> Path:
    return request.app[CONFIG].evaluations_dir / job_id


@routes.post("/training/evaluate")
@documented(
    "Score a checkpoint on a dataset's validation records (a job)",
    body=EvaluateRequest,
    status=202,
    errors=(404, 409, 504),
)
async def evaluate(request: web.Request) -> web.Response:
    config, store = request.app[CONFIG], request.app[STORE]
    body = await read_body(request, EvaluateRequest)
    name = registry.check_name(body.dataset, "dataset")
    if body.views is not None:
        rendering = await rendering_limits(request.app)
        for index, view in enumerate(body.views):
            check_view(rendering, view, f"views.{index}")
    chosen = await checkpoints.choose(config, store, body.checkpoint, body.checkpoint_name)
    job_id = new_job_id(KIND)
    async with store.reserved(name, job_id):
        path = registry.ready_for_stage(config, name, "conversion", "dataset")
        out = evaluation_dir(request, job_id)
        args = ["--dataset", str(path), *chosen.stage_args(), "--output", str(out)]
        # Files only (no weights): a checkpoint that cannot load is a 422 now, not a failed job.
        await check_or_422(config, "train.evaluate", [*args, *body.to_args(), "--check"],
                           "checkpoint")  # fmt: skip
        params = {**body.model_dump(exclude_none=True), "checkpoint_resolved": chosen.description}
        job = await request.app[RUNNER].submit(
            KIND, "train.evaluate", [*args, *body.to_args()], params, dataset=name, slot="gpu",
            job_id=job_id, resume_args=["--resume"],
        )  # fmt: skip
    return await started_response(
        store,
        job,
        items=body.samples or DEFAULT_SAMPLES,
        location=f"/training/evaluations/{job.id}",
        checkpoint=chosen.description,
    )


@routes.get("/training/evaluations")
@documented(
    "Evaluations, newest first, with their summaries (filter by dataset)",
    query={"dataset": {"type": "string"}, **PAGING},
)
async def list_evaluations(request: web.Request) -> web.Response:
    limit = query_int(request, "limit", 50, 1, 500)
    offset = query_int(request, "offset", 0, 0, 10**9)
    jobs, total = await request.app[STORE].list_jobs(
        kind=KIND, dataset=request.query.get("dataset") or None, limit=limit, offset=offset
    )
    return web.json_response(
        {"evaluations": [_overview(job) for job in jobs], "total": total, "limit": limit,
         "offset": offset}
    )  # fmt: skip


@routes.get("/training/evaluations/{job_id}")
@documented("One evaluation: its summary and each sample beside the reference", query=PAGING)
async def get_evaluation(request: web.Request) -> web.Response:
    job = await job_or_404(request, (KIND,), "evaluation")
    limit = query_int(request, "limit", 50, 1, 500)
    offset = query_int(request, "offset", 0, 0, 10**9)
    rows = await asyncio.to_thread(_read_samples, evaluation_dir(request, job.id) / SAMPLES_FILE)
    page = [_sample_view(job, row) for row in rows[offset : offset + limit]]
    return web.json_response(
        {
            **_overview(job),
            "progress": progress_body(job)["progress"],
            "samples": page,
            "total_samples": len(rows),
            "limit": limit,
            "offset": offset,
        }
    )


@routes.get("/training/evaluations/{job_id}/images/{filename}")
@documented("A view of a generated solid (PNG)", media_type="image/png")
async def evaluation_image(request: web.Request) -> web.StreamResponse:
    job = await job_or_404(request, (KIND,), "evaluation")
    filename = registry.check_image_name(request.match_info["filename"])
    return image_or_404(filename, evaluation_dir(request, job.id) / IMAGES)


def _overview(job: Job) -> dict[str, Any]:
    result = job.result or {}
    return {
        "job_id": job.id,
        "status": job.status,
        "dataset": job.dataset,
        "checkpoint": job.params.get("checkpoint_resolved"),
        "created_at": iso(job.created_at),
        "finished_at": iso(job.finished_at),
        "summary": {k: result[k] for k in SUMMARY_KEYS if k in result} if result else None,
        "error": job.error,
    }


def _sample_view(job: Job, row: dict[str, Any]) -> dict[str, Any]:
    """A stored sample with links to its reference views and the generated solid's."""
    dataset = f"/training/datasets/{job.dataset}/images/"
    generated = f"/training/evaluations/{job.id}/images/"
    view = {k: v for k, v in row.items() if k not in ("reference_images", "generated_images")}
    view["reference_images"] = {
        name: dataset + file for name, file in (row.get("reference_images") or {}).items()
    }
    view["generated_images"] = {
        name: generated + file for name, file in (row.get("generated_images") or {}).items()
    }
    return view


def _read_samples(path: Path) -> list[dict[str, Any]]:
    """Every complete line of the samples file (a line being written is left for later)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    rows = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows
