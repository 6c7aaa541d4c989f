"""The dataset registry: names, folders, stage states and the summaries the API serves.

A dataset is a folder under the data root with a ``dataset.json`` manifest. Completed and
failed stage states live in the manifest (so the registry rebuilds itself from the folders
if the database is lost); what is running now comes from the job store.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

from server.config import Config
from server.problems import ProblemError, not_found
from server.store import ACTIVE, Job, JobStore
from stages.manifest import MANIFEST, read_manifest, update_manifest

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

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
        raise ProblemError(
            422,
            "dataset names are 1-64 characters: letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            field=field,
            kind="invalid-value",
        )
    return name


def dataset_dir(config: Config, name: str) -> Path:
    """The dataset's folder, guaranteed to lie inside the data root."""
    root = config.data_root.resolve()
    path = (root / name).resolve()
    if path.parent != root:
        raise ProblemError(422, "dataset name escapes the data root", field="dataset")
    return path


def relative_to_var(config: Config, path: Path) -> str:
    return os.path.relpath(path, config.var_dir.resolve())


def load_manifest(config: Config, name: str) -> dict[str, Any]:
    path = dataset_dir(config, check_name(name, "dataset_name"))
    if not (path / MANIFEST).is_file():
        raise not_found("dataset", name)
    return read_manifest(path)


async def active_jobs(store: JobStore, name: str) -> list[Job]:
    jobs, _ = await store.list_jobs(statuses=ACTIVE, dataset=name, limit=100)
    return jobs


async def latest_jobs_by_kind(store: JobStore, name: str) -> dict[str, Job]:
    jobs, _ = await store.list_jobs(dataset=name, limit=200)
    latest: dict[str, Job] = {}
    for job in jobs:  # newest first
        latest.setdefault(job.kind, job)
    return latest


def folder_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" or value >= 10 else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def _stage_states(manifest: dict[str, Any], latest: dict[str, Job]) -> dict[str, str]:
    states = dict(manifest.get("stages") or {})
    for kind, stage in STAGE_OF_KIND.items():
        job = latest.get(kind)
        states.setdefault(stage, "pending")
        if job is not None and job.status in ACTIVE:
            states[stage] = "in_progress"
        elif (
            job is not None
            and job.status in ("failed", "interrupted", "cancelled")
            and states[stage] != "completed"
        ):
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


async def list_datasets(config: Config, store: JobStore) -> list[dict[str, Any]]:
    names = (
        sorted(
            entry.name
            for entry in config.data_root.iterdir()
            if entry.is_dir()
            and (entry / MANIFEST).is_file()
            and NAME_PATTERN.fullmatch(entry.name)
        )
        if config.data_root.is_dir()
        else []
    )
    summaries = [await dataset_summary(config, store, name) for name in names]
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
    return summaries


async def record_stage_outcome(config: Config, job: Job) -> None:
    """After a render, convert or validate job: its stage state and counts into the manifest."""
    stage = STAGE_OF_KIND.get(job.kind)
    if stage is None or job.dataset is None or stage == "extraction":
        return
    path = dataset_dir(config, job.dataset)
    if not (path / MANIFEST).is_file():
        return
    result = job.result or {}
    size = await asyncio.to_thread(folder_size, path)

    def change(manifest: dict[str, Any]) -> None:
        counts = manifest.setdefault("counts", {})
        counts["bytes"] = size
        if job.status != "completed":
            if job.status in ("failed", "interrupted", "cancelled"):
                manifest.setdefault("stages", {})[stage] = "failed"
            return
        manifest.setdefault("stages", {})[stage] = "completed"
        if job.kind == "render":
            counts["images"] = _count_images(path)
            manifest["render"] = {
                "views": job.params.get("views"),
                "resolution": job.params.get("resolution"),
                "composite": job.params.get("composite", False),
            }
            for later in ("conversion", "validation"):
                manifest["stages"][later] = "pending"
        elif job.kind == "convert":
            counts["conversations"] = {
                "train": result.get("train_conversations", 0),
                "val": result.get("val_conversations", 0),
            }
            manifest["conversion"] = {k: v for k, v in job.params.items()}
            manifest["stages"]["validation"] = "pending"
        elif job.kind == "validate":
            manifest["validation"] = {
                "valid": result.get("valid"),
                "validation": result.get("validation"),
            }

    await asyncio.to_thread(update_manifest, path, change)


def _count_images(path: Path) -> int:
    images = path / "images"
    if not images.is_dir():
        return 0
    return sum(1 for entry in os.scandir(images) if entry.name.endswith(".png"))
