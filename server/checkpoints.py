"""Checkpoints a request names: a training job, a checkpoint folder the server made, or a base
model; turned into the ``--checkpoint`` (base model) and ``--adapter`` a stage loads.

A training job's run directory is ``checkpoints/<dataset>/<job id>/`` (``stages.train.runs``):
``best`` is its checkpoint with the lowest validation loss, ``final`` the adapter saved at the
end, ``step-NNNNNNNN`` one checkpoint. Folders are only ever taken from under the service's
checkpoints root, so a request cannot point a stage at an arbitrary directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.config import Config
from server.http.problems import ProblemError, conflict, invalid, not_found
from server.jobs.store import Job, JobStore
from stages.train.runs import (
    ADAPTER_CONFIG,
    CHECKPOINT_PREFIX,
    RunLayout,
    best_of,
    checkpoint_infos,
)

TRAINING_KINDS = ("training", "training_test")
JOB_ID = re.compile(r"^(training|training_test)_[0-9a-f]{10}$")
CHECKPOINT_NAME = re.compile(rf"^(best|final|{CHECKPOINT_PREFIX}\d{{1,12}})$")
TINY = "tiny"


@dataclass(frozen=True)
class ChosenCheckpoint:
    """What a stage loads: the base model spec or folder, and the adapter on top of it."""

    base_model: str
    adapter: Path | None
    description: dict[str, Any]

    def stage_args(self) -> list[str]:
        adapter = ["--adapter", str(self.adapter)] if self.adapter else []
        return ["--checkpoint", self.base_model, *adapter]


def run_layout(config: Config, job: Job) -> RunLayout:
    return RunLayout(config.checkpoints_root / (job.dataset or "") / job.id)


async def training_job(store: JobStore, job_id: str) -> Job:
    job = await store.get_job(job_id)
    if job is None or job.kind not in TRAINING_KINDS:
        raise not_found("training job", job_id)
    return job


def list_checkpoints(config: Config, job: Job) -> dict[str, Any]:
    """A run's checkpoints with step, epoch, validation loss and size; which is best; and
    the final adapter once the run saved it."""
    layout = run_layout(config, job)
    infos = checkpoint_infos(layout)
    best = best_of(infos)
    final = layout.adapter_dir
    return {
        "job_id": job.id,
        "dataset": job.dataset,
        "checkpoints": [info.as_json(best=info is best) for info in infos],
        "best": best.name if best else None,
        "final": {"name": "final", "size_bytes": _size(final)} if final.is_dir() else None,
    }


async def choose(
    config: Config, store: JobStore, spec: str, name: str | None, field: str = "checkpoint"
) -> ChosenCheckpoint:
    """The checkpoint ``spec`` names (a training job id, a folder under the checkpoints root,
    or a base model), with ``name`` choosing among a job's checkpoints."""
    if JOB_ID.fullmatch(spec):
        return _from_job(config, await training_job(store, spec), name)
    if name is not None:
        raise invalid("checkpoint_name", "checkpoint_name applies to a training job id only")
    folder = _under_root(config, spec)
    if folder is not None:
        return _from_folder(config, folder, field)
    if spec == TINY:
        raise invalid(
            field, "the tiny model is built for each training run: name the training job instead"
        )
    return ChosenCheckpoint(spec, None, {"kind": "base_model", "base_model": spec})


def _from_job(config: Config, job: Job, name: str | None) -> ChosenCheckpoint:
    layout = run_layout(config, job)
    if name is not None and not CHECKPOINT_NAME.fullmatch(name):
        raise invalid("checkpoint_name", "checkpoint_name is best, final or step-NNNNNNNN")
    infos = checkpoint_infos(layout)
    if name is None:
        name = "best" if best_of(infos) else "final"
    if name == "final":
        adapter = layout.adapter_dir
        if not (adapter / ADAPTER_CONFIG).is_file():
            raise conflict(
                f"training job {job.id} has no final adapter yet ({job.status})",
                kind="no-checkpoint",
            )
    else:
        chosen = (
            best_of(infos)
            if name == "best"
            else next((info for info in infos if info.name == name), None)
        )
        if chosen is None:
            raise ProblemError(
                404, f"training job {job.id} has no checkpoint {name!r}", kind="unknown-checkpoint"
            )
        adapter, name = chosen.path, chosen.name
    return ChosenCheckpoint(
        _base_of(layout, job),
        adapter,
        {"kind": "training_job", "job_id": job.id, "checkpoint": name, "dataset": job.dataset},
    )


def _base_of(layout: RunLayout, job: Job) -> str:
    """The run's own tiny model where it built one, else the base model it trained on."""
    if layout.base_model_dir.is_dir():
        return str(layout.base_model_dir.resolve())
    saved = layout.saved_config().get("base_model")
    resolved = (job.params.get("resolved") or {}).get("base_model")
    return str(saved or resolved or TINY)


def _under_root(config: Config, spec: str) -> Path | None:
    """``spec`` as a folder under the checkpoints root (written with or without the leading
    ``checkpoints/``), or None when it names none there."""
    relative = spec.removeprefix("checkpoints/")
    if relative.startswith("/") or not relative:
        return None
    root = config.checkpoints_root.resolve()
    folder = (root / relative).resolve()
    if not folder.is_relative_to(root) or folder == root or not folder.is_dir():
        return None
    return folder


def _from_folder(config: Config, folder: Path, field: str) -> ChosenCheckpoint:
    if not (folder / ADAPTER_CONFIG).is_file():
        raise invalid(field, "that folder holds no adapter (adapter_config.json)")
    run = next((p for p in folder.parents if (p / "train_config.json").is_file()), None)
    if run is None:
        raise invalid(field, "that adapter is not part of a training run of this service")
    layout = RunLayout(run)
    base = layout.saved_config().get("base_model") or TINY
    if layout.base_model_dir.is_dir():
        base = str(layout.base_model_dir.resolve())
    relative = folder.relative_to(config.checkpoints_root.resolve())
    return ChosenCheckpoint(
        base, folder, {"kind": "folder", "checkpoint": f"checkpoints/{relative}"}
    )


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
