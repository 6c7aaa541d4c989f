"""A dataset's manifest (``dataset.json``): what it holds and how far each stage got.

Written atomically (temporary file, then rename) and updated under an exclusive file lock,
because the server and a stage may touch it at the same time.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

MANIFEST = "dataset.json"
STAGES = ("extraction", "rendering", "conversion", "validation")
STAGE_STATES = ("pending", "in_progress", "completed", "failed")


def write_bytes_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` so that readers see the old file or the new one, never half of one.

    The temporary name is chosen before the file exists, so whatever interrupts the write
    (a cancel's SIGTERM included) can always remove it. ``durable`` also flushes the file
    to disk before the rename (against power loss, not only a killed process).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(temporary, "xb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str, *, durable: bool = True) -> None:
    write_bytes_atomic(path, text.encode("utf-8"), durable=durable)


def write_json_atomic(path: Path, data: Any, *, indent: int | None = 2) -> None:
    """Write JSON so that readers see the old file or the new one, never half of one."""
    write_text_atomic(path, json.dumps(data, indent=indent, ensure_ascii=False) + "\n")


def new_manifest(name: str, **fields: Any) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "name": name,
        "counts": {},
        "stages": dict.fromkeys(STAGES, "pending"),
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
