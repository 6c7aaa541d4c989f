"""Checkpoint and export routes: a training run's checkpoints, and a checkpoint merged into its
base model as a standalone model to download.

An export is a job (kind ``export``, on the CPU slot) running ``stages.train.export`` into
``<var>/exports/<job id>/``: ``model/`` (the merged checkpoint in the base model's own
layout) and ``model.tar`` (an uncompressed tar of it, served by the download route).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web

from server import checkpoints
from server.appkeys import CONFIG, RUNNER, STORE
from server.bodies.exports import ExportRequest
from server.config import Config
from server.http.estimates import started_response
from server.http.jobviews import iso, progress_body
from server.http.lookups import job_or_404
from server.http.openapi import documented
from server.http.problems import ProblemError, conflict, not_found
from server.http.requests import read_body
from server.jobs.live import new_job_id
from server.jobs.store import Job
from stages.train.export import ARCHIVE, weights_megabytes

routes = web.RouteTableDef()

KIND = "export"
TAR = "application/x-tar"
LISTING_ATTEMPTS = 3  # a running training job may delete an old checkpoint while it is read


def export_dir(request: web.Request, job_id: str) -> Path:
    return request.app[CONFIG].exports_dir / job_id


@routes.get("/training/{job_id}/checkpoints")
@documented("A training job's checkpoints: step, epoch, validation loss, size, best and final")
async def list_checkpoints(request: web.Request) -> web.Response:
    job = await job_or_404(request, checkpoints.TRAINING_KINDS, "training job")
    listing = await asyncio.to_thread(_read_listing, request.app[CONFIG], job)
    return web.json_response({**listing, "status": job.status})


@routes.post("/training/{job_id}/export")
@documented(
    "Merge a training job's checkpoint into its base model and package it (a job)",
    body=ExportRequest,
    status=202,
    errors=(409,),
)
async def export(request: web.Request) -> web.Response:
    config, store = request.app[CONFIG], request.app[STORE]
    training = await job_or_404(request, checkpoints.TRAINING_KINDS, "training job")
    body = await read_body(request, ExportRequest, required=False)
    chosen = await checkpoints.choose(config, store, training.id, body.checkpoint_name)
    job_id = new_job_id(KIND)
    args = [*chosen.stage_args(), "--output", str(export_dir(request, job_id)), *body.to_args()]
    params = {
        **body.model_dump(exclude_none=True),
        "training_job": training.id,
        "dataset": training.dataset,
        "checkpoint_resolved": chosen.description,
    }
    job = await request.app[RUNNER].submit(
        KIND, "train.export", args, params, slot="cpu", job_id=job_id
    )
    base = Path(chosen.base_model)
    return await started_response(
        store,
        job,
        items=weights_megabytes(base) if base.is_dir() else 0,
        location=f"/training/exports/{job.id}",
        checkpoint=chosen.description,
        download_url=_download_url(job.id),
    )


@routes.get("/training/exports/{job_id}")
@documented("An export: its status, the merged model's files and the archive to download")
async def get_export(request: web.Request) -> web.Response:
    job = await job_or_404(request, (KIND,), "export")
    return web.json_response(_export_view(job))


@routes.get("/training/exports/{job_id}/download")
@documented(
    "The exported model as an uncompressed tar (409 until the export has completed)",
    media_type=TAR,
    errors=(409,),
)
async def download_export(request: web.Request) -> web.StreamResponse:
    job = await job_or_404(request, (KIND,), "export")
    if job.status != "completed":
        raise conflict(
            f"export {job.id} is {job.status}: its archive exists once it has completed",
            kind="export-not-ready",
            job_status=job.status,
        )
    archive = export_dir(request, job.id) / ARCHIVE
    if not archive.is_file():
        raise not_found("export archive", job.id)
    return web.FileResponse(
        archive,
        headers={
            "Content-Type": TAR,
            "Content-Disposition": f'attachment; filename="{_archive_name(job)}"',
        },
    )


def _read_listing(config: Config, job: Job) -> dict[str, Any]:
    """``checkpoints.list_checkpoints``, read again when a running job rotated a checkpoint
    away meanwhile; storage that refuses to be read is a 503."""
    for _ in range(LISTING_ATTEMPTS):
        try:
            return checkpoints.list_checkpoints(config, job)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ProblemError(
                503, "the checkpoints could not be read", kind="storage-error"
            ) from exc
    raise ProblemError(503, "the checkpoints kept changing while read", kind="storage-error")


def _download_url(job_id: str) -> str:
    return f"/training/exports/{job_id}/download"


def _archive_name(job: Job) -> str:
    """``<training job>-<checkpoint>.tar``: which model it is, from the name alone."""
    training = job.params.get("training_job")
    checkpoint = (job.params.get("checkpoint_resolved") or {}).get("checkpoint")
    return f"{training}-{checkpoint}.tar" if training and checkpoint else f"{job.id}.tar"


def _export_view(job: Job) -> dict[str, Any]:
    """The job, what it exports, and its result (files, sizes, base model kind, archive)."""
    return {
        "job_id": job.id,
        "status": job.status,
        "training_job": job.params.get("training_job"),
        "dataset": job.params.get("dataset"),
        "checkpoint": job.params.get("checkpoint_resolved"),
        "progress": progress_body(job)["progress"],
        "download_url": _download_url(job.id) if job.status == "completed" else None,
        "result": job.result,
        "error": job.error,
        "created_at": iso(job.created_at),
        "finished_at": iso(job.finished_at),
    }
