"""Request scratch folders under ``renders/``: made only after the request is valid, removed
when it fails, and pruned past a retention limit so the folder cannot grow without bound."""

from __future__ import annotations

import secrets
import shutil
import time
from pathlib import Path

# A request's folder is kept for its image URLs; past either limit it is removed. Batch
# render folders are a job's output (its input too, while it runs) and are never pruned.
KEEP_NEWEST = 200
KEEP_SECONDS = 24 * 3600.0
# ``inference_`` folders (reconstructions) live under ``inference/``, pruned the same way.
PRUNED_PREFIXES = ("render_views_", "pair_", "inference_")


class ScratchDir:
    """``with ScratchDir(root, "render_views") as work:``: ``work.id`` names it in URLs."""

    def __init__(self, root: Path, prefix: str) -> None:
        self.root = root
        self.id = f"{prefix}_{secrets.token_hex(5)}"
        self.path = root / self.id

    def __enter__(self) -> ScratchDir:
        self.path.mkdir(parents=True)
        prune(self.root, keep=self.id)
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:
            shutil.rmtree(self.path, ignore_errors=True)


def prune(root: Path, keep: str = "", now: float | None = None) -> int:
    """Remove scratch folders past the retention limits; returns how many went."""
    now = time.time() if now is None else now
    try:
        entries = sorted(
            (
                e
                for e in root.iterdir()
                if e.name.startswith(PRUNED_PREFIXES) and e.name != keep and e.is_dir()
            ),
            key=lambda e: e.stat().st_mtime,
            reverse=True,
        )
    except OSError:
        return 0
    removed = 0
    for index, entry in enumerate(entries):
        try:
            too_old = now - entry.stat().st_mtime > KEEP_SECONDS
        except OSError:
            continue
        if index >= KEEP_NEWEST - 1 or too_old:
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    return removed
