"""A dataset's manifest (``dataset.json``): what it holds and how far each stage got.

Written atomically (temporary file, then rename) and updated under an exclusive file lock,
because the server and a stage may touch it at the same time.

Each stage keeps its own entry: extraction writes the whole manifest with the folder; render,
convert and validate run inside ``stage_run`` (``in_progress`` at the start, ``failed`` when
the run ends with any exception, a cancel's StageCancelled included) and call
``stage_completed`` with what they made.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from stages.atomic import write_json_atomic
from stages.dataset.layout import COMPOSITE, MANIFEST, folder_size

EXTRACTION = "extraction"
RENDERING = "rendering"
CONVERSION = "conversion"
VALIDATION = "validation"
STAGES = (EXTRACTION, RENDERING, CONVERSION, VALIDATION)
# A stage's state in ``stages``.
PENDING = "pending"
IN_PROGRESS = "in_progress"
COMPLETED = "completed"
FAILED = "failed"

log = logging.getLogger("stages")


def new_manifest(name: str, **fields: Any) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "name": name,
        "counts": {},
        "stages": dict.fromkeys(STAGES, PENDING),
    }
    manifest.update(fields)
    return manifest


def read_manifest(dataset_dir: Path) -> dict[str, Any]:
    with open(Path(dataset_dir) / MANIFEST, encoding="utf-8") as f:
        return json.load(f)


def write_manifest(dataset_dir: Path, data: dict[str, Any]) -> None:
    write_json_atomic(Path(dataset_dir) / MANIFEST, data)


@contextlib.contextmanager
def _locked(dataset_dir: Path) -> Iterator[None]:
    with open(Path(dataset_dir) / ".manifest.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def update_manifest(dataset_dir: Path, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Read, change in place, and write the manifest under an exclusive lock."""
    with _locked(Path(dataset_dir)):
        data = read_manifest(dataset_dir)
        change(data)
        write_manifest(dataset_dir, data)
        return data


def read_manifest_or_empty(dataset: Path) -> dict[str, Any]:
    """The manifest, or ``{}`` when the dataset has none (or an unreadable one)."""
    try:
        data = json.loads((dataset / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def has_manifest(dataset: Path) -> bool:
    return (Path(dataset) / MANIFEST).is_file()


def mark_stage(dataset: Path, stage: str, state: str, **sections: Any) -> dict[str, Any] | None:
    """Set one stage's state and replace top-level sections (counts are merged, not replaced).

    A stage calls this for its own dataset: ``in_progress`` when it starts, ``completed`` with
    what it made, ``failed`` when it ends otherwise. A folder without a manifest (a plain
    folder rendered from a script) is left alone and ``None`` is returned.
    """
    if not has_manifest(dataset):
        return None

    def change(manifest: dict[str, Any]) -> None:
        manifest.setdefault("stages", {})[stage] = state
        counts = sections.pop("counts", None)
        if counts:
            manifest.setdefault("counts", {}).update(counts)
        later = sections.pop("reset_later", False)
        manifest.update(sections)
        if later:
            for next_stage in STAGES[STAGES.index(stage) + 1 :]:
                manifest["stages"][next_stage] = PENDING

    return update_manifest(dataset, change)


@contextlib.contextmanager
def stage_run(dataset: Path, stage: str) -> Iterator[None]:
    """Mark ``stage`` ``in_progress``; when the block raises anything (a failure, bad input,
    SIGTERM's StageCancelled) mark it ``failed`` with the folder's size, and re-raise. The block
    ends a successful run with ``stage_completed``. No manifest: nothing is marked."""
    dataset = Path(dataset)
    mark_stage(dataset, stage, IN_PROGRESS)
    try:
        yield
    except BaseException:
        try:
            if has_manifest(dataset):
                mark_stage(dataset, stage, FAILED, counts={"bytes": folder_size(dataset)})
        except (OSError, ValueError) as exc:  # never hide why the run ended
            log.warning("cannot mark %s failed in %s: %s", stage, dataset / MANIFEST, exc)
        raise


def stage_completed(
    dataset: Path, stage: str, *, counts: dict[str, Any] | None = None, **sections: Any
) -> dict[str, Any] | None:
    """Mark ``stage`` ``completed``: ``counts`` (merged, with ``bytes``, the folder's size
    now) and the stage's other sections as ``mark_stage`` takes them."""
    dataset = Path(dataset)
    if not has_manifest(dataset):
        return None
    counts = {"bytes": folder_size(dataset), **(counts or {})}
    return mark_stage(dataset, stage, COMPLETED, counts=counts, **sections)


def rendered_images(manifest: dict[str, Any]) -> tuple[str, ...] | None:
    """The images every model got by the manifest's ``render`` section (its views, then
    ``composite`` when asked), or None when it has no usable one (not rendered as a dataset)."""
    render = manifest.get("render")
    views = render.get("views") if isinstance(render, dict) else None
    if not isinstance(views, list) or not all(isinstance(v, str) for v in views):
        return None
    return (*views, *((COMPOSITE,) if render.get("composite") is True else ()))
