"""The dataset registry: names, folders, stage states and the summaries the API serves.

A dataset is a folder under the data root with a manifest that its stages write themselves
(``stages.dataset``), so the registry rebuilds itself from the folders if the database is
lost; what is running now comes from the job store. A stage the manifest says is
``in_progress`` while no job of it is active died with its process: it is ``failed``.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path
from typing import Any

from server.bodies.base import OneModel
from server.config import Config
from server.http.problems import ProblemError, conflict, invalid, not_found
from server.jobs.store import ACTIVE, Job, JobStore
from stages.dataset.layout import MANIFEST, find_model_file
from stages.dataset.manifest import STAGES, read_manifest

log = logging.getLogger("server.datasets")

DELETED_PREFIX = ".deleted-"  # a deleted dataset's folder until its files are gone
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
IMAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.png$")

# Which pipeline stage each job kind advances, and the overall status while it runs.
STAGE_OF_KIND = {
    "extract": "extraction",
    "render": "rendering",
    "convert": "conversion",
    "validate": "validation",
}
ACTIVE_STATUS = {
    "extract": "extracting",
    "render": "rendering",
    "convert": "converting",
    "validate": "validating",
    "training_test": "testing",
    "training": "training",
}


def check_name(name: str, field: str = "output_name") -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or name in (".", ".."):
        raise invalid(
            field,
            "dataset names are 1-64 characters: letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
        )
    return name


def dataset_dir(config: Config, name: str) -> Path:
    """The dataset's folder, guaranteed to lie inside the data root."""
    root = config.data_root.resolve()
    path = (root / name).resolve()
    if path.parent != root:
        raise invalid("dataset", "dataset name escapes the data root")
    return path


def sweep_deleted(config: Config) -> None:
    """Remove what a deletion interrupted by a crash left behind."""
    if config.data_root.is_dir():
        for entry in config.data_root.glob(f"{DELETED_PREFIX}*"):
            shutil.rmtree(entry, ignore_errors=True)


def has_dataset(config: Config, name: str) -> bool:
    return (dataset_dir(config, name) / MANIFEST).is_file()


def check_image_name(filename: str) -> str:
    if not IMAGE_NAME.fullmatch(filename):
        raise invalid("filename", "image names look like <model_id>_<view>.png")
    return filename


def load_manifest(config: Config, name: str, field: str = "dataset_name") -> dict[str, Any]:
    path = dataset_dir(config, check_name(name, field))
    if not (path / MANIFEST).is_file():
        raise not_found("dataset", name)
    try:
        manifest = read_manifest(path)
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict):
        raise conflict(
            f"dataset {name!r} has an unreadable manifest; delete it and extract it again",
            kind="broken-dataset",
        )
    return manifest


def check_model_id(model_id: str, field: str) -> str:
    if not MODEL_ID.fullmatch(model_id):
        raise invalid(field, f"invalid model id {model_id!r}")
    return model_id


def dataset_model(config: Config, name: str, model_id: str, field: str = "model_id") -> Path:
    """One model's file in an existing dataset (404 for an unknown dataset or model)."""
    load_manifest(config, name, "dataset")
    found = find_model_file(dataset_dir(config, name), check_model_id(model_id, field))
    if found is None:
        raise not_found("model", model_id)
    return found


def model_count(config: Config, name: str) -> int:
    return int((load_manifest(config, name).get("counts") or {}).get("models", 0))


def requested_model(config: Config, body: OneModel) -> tuple[str, Path | None]:
    """The model a one-model request names: its id, and its file when it is a dataset's
    (``None`` when the request carries the model inline)."""
    if body.model is not None:
        return check_model_id(body.model_id or "model", "model_id"), None
    model_id = body.model_id or ""
    return model_id, dataset_model(config, body.dataset or "", model_id)


# What a stage needs done before it, in words for the 409.
_DONE_WORD = {"extraction": "extracted", "rendering": "rendered", "conversion": "converted"}


def ready_for_stage(config: Config, name: str, needs: str, field: str = "dataset_name") -> Path:
    """The dataset's folder, if ``needs`` has completed (404/409). Call it holding the
    dataset (``JobStore.reserved``), so no other job or deletion changes it meanwhile."""
    manifest = load_manifest(config, name, field)
    if (manifest.get("stages") or {}).get(needs) != "completed":
        raise conflict(f"dataset {name!r} is not {_DONE_WORD[needs]} yet", stage=needs)
    return dataset_dir(config, name)


async def active_jobs(store: JobStore, name: str) -> list[Job]:
    jobs, _ = await store.list_jobs(statuses=ACTIVE, dataset=name, limit=100)
    return jobs


async def latest_jobs_by_kind(store: JobStore, name: str) -> dict[str, Job]:
    jobs, _ = await store.list_jobs(dataset=name, limit=200)
    latest: dict[str, Job] = {}
    for job in jobs:  # newest first
        latest.setdefault(job.kind, job)
    return latest


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" or value >= 10 else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def _stage_states(manifest: dict[str, Any], latest: dict[str, Job]) -> dict[str, str]:
    states = {stage: "pending" for stage in STAGES} | dict(manifest.get("stages") or {})
    for kind, stage in STAGE_OF_KIND.items():
        job = latest.get(kind)
        if job is not None and job.status in ACTIVE:
            states[stage] = "in_progress"
        elif states[stage] == "in_progress":  # its process died before it could say so
            states[stage] = "failed"
    return states


def overall_status(states: dict[str, str], active: list[Job]) -> str:
    if active:
        return ACTIVE_STATUS.get(active[0].kind, "busy")
    if "failed" in states.values():
        return "failed"
    if states.get("conversion") == "completed":
        return "ready"
    for stage, word in (("rendering", "rendered"), ("extraction", "extracted")):
        if states.get(stage) == "completed":
            return word
    return "pending"


async def dataset_summary(config: Config, store: JobStore, name: str) -> dict[str, Any]:
    manifest = load_manifest(config, name)
    latest = await latest_jobs_by_kind(store, name)
    active = await active_jobs(store, name)
    states = _stage_states(manifest, latest)
    counts = manifest.get("counts") or {}
    conversations = counts.get("conversations") or {}
    return {
        "name": name,
        "models": counts.get("models", 0),
        "train_models": counts.get("train", 0),
        "val_models": counts.get("val", 0),
        "images": counts.get("images", 0),
        "conversations": sum(conversations.values()) if conversations else 0,
        "size": human_size(counts.get("bytes", 0)),
        "size_bytes": counts.get("bytes", 0),
        "status": overall_status(states, active),
        "stages": states,
        "source": (manifest.get("source") or {}).get("kind"),
        "created_at": manifest.get("created_at"),
    }


def _dataset_names(config: Config) -> tuple[list[str], list[dict[str, str]]]:
    """The data root's dataset folders, and what was passed over: a link (datasets are real
    folders of the data root; a link could point anywhere) or a name no dataset can have."""
    if not config.data_root.is_dir():
        return [], []
    names, passed_over = [], []
    for entry in sorted(config.data_root.iterdir()):
        if entry.name.startswith(DELETED_PREFIX):
            continue
        if entry.is_symlink():
            reason = "a symbolic link, not a dataset folder"
        elif not entry.is_dir() or not (entry / MANIFEST).is_file():
            continue
        elif not NAME_PATTERN.fullmatch(entry.name):
            reason = "not a valid dataset name"
        else:
            names.append(entry.name)
            continue
        log.warning("data root entry %r skipped: %s", entry.name, reason)
        passed_over.append({"name": entry.name, "reason": reason})
    return names, passed_over


async def list_datasets(
    config: Config, store: JobStore
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Every dataset's summary, and the entries skipped with a warning: one bad folder must
    not hide the others from every client."""
    names, skipped = _dataset_names(config)
    summaries = []
    for name in names:
        try:
            summaries.append(await dataset_summary(config, store, name))
        except (ProblemError, OSError) as exc:
            reason = exc.detail if isinstance(exc, ProblemError) else "it could not be read"
            log.warning("dataset %r skipped: %s", name, exc)
            skipped.append({"name": name, "reason": reason})
    # Datasets still being extracted have no folder yet: list them from their jobs.
    jobs, _ = await store.list_jobs(statuses=ACTIVE, kind="extract", limit=100)
    for job in jobs:
        if job.dataset and job.dataset not in names:
            summaries.append(
                {
                    "name": job.dataset,
                    "models": 0,
                    "images": 0,
                    "conversations": 0,
                    "size": human_size(0),
                    "size_bytes": 0,
                    "status": "extracting" if job.status == "running" else "queued",
                    "stages": {"extraction": "in_progress"},
                }
            )
    return summaries, skipped
