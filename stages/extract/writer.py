"""Write a dataset folder so that it either exists complete or not at all.

Everything goes into a hidden sibling, ``.<name>.partial-<random>``, which is renamed into
place as the very last step: a crash or a kill leaves only that hidden folder, never one that
looks like a dataset. While a run writes, it holds an exclusive ``flock`` on its partial
folder; the kernel drops the lock when the process dies, however it dies, so the next run
knows an unlocked partial folder is stale and removes it.

Besides the models, the split and the manifest, the folder gets ``models.json``: what checking
each chosen model found (split, volume, solids, geometric key), so that later stages need not
build a model again to know them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

from stages.atomic import write_json_atomic
from stages.dataset.layout import MODELS_INDEX, SPLIT_FILE, model_relpath
from stages.dataset.manifest import write_manifest
from stages.extract.sources import Candidate
from stages.protocol import UsageError, writing

PARTIAL_MARK = ".partial-"


class DatasetWriter:
    """Builds one dataset folder in a locked partial sibling and renames it into place.

    Use as a context manager: leaving it with an error removes the partial folder.
    """

    def __init__(self, output: Path) -> None:
        self.output = Path(output)
        _check_output(self.output)
        self.output.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(self.output.parent)
        self.partial, self._lock_fd = _locked_partial(self.output)
        self._folders: set[str] = set()
        self.committed = False

    def add_model(self, candidate: Candidate) -> None:
        """Copy a source file byte for byte, or write a generated model's JSON."""
        relpath = model_relpath(candidate.model_id)
        folder = relpath.rsplit("/", 1)[0]
        if folder not in self._folders:
            (self.partial / folder).mkdir(parents=True, exist_ok=True)
            self._folders.add(folder)
        target = self.partial / relpath
        with writing(target):  # a full disk is write_failed, not a crash
            if candidate.text is not None:
                target.write_text(candidate.text, encoding="utf-8")
            elif candidate.path is not None:
                shutil.copyfile(candidate.path, target)
            else:
                raise ValueError(f"candidate {candidate.model_id} has neither a path nor a text")

    def commit(
        self,
        split: dict[str, list[str]],
        manifest: dict[str, Any],
        models: dict[str, dict[str, Any]] | None = None,
    ) -> Path:
        """Write the split, the models' facts (``models.json``, when given) and the manifest,
        then move the whole folder into place."""
        with writing(self.partial):
            write_json_atomic(self.partial / SPLIT_FILE, split, indent=None)
            if models is not None:
                write_json_atomic(self.partial / MODELS_INDEX, models, indent=None)
            write_manifest(self.partial, manifest)
        _fsync_dir(self.partial)
        try:
            os.rename(self.partial, self.output)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                raise UsageError(f"{self.output} appeared while extracting; not replaced") from exc
            raise
        self.committed = True
        _fsync_dir(self.output.parent)
        self._unlock()
        return self.output

    def abort(self) -> None:
        """Remove the partial folder (the lock goes with it)."""
        if not self.committed:
            shutil.rmtree(self.partial, ignore_errors=True)
        self._unlock()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None or not self.committed:
            self.abort()

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def remove_stale_partials(parent: Path) -> list[Path]:
    """Remove partial folders no running writer holds (left by a crash or a kill)."""
    removed = []
    try:
        entries = [
            e for e in os.scandir(parent) if e.name.startswith(".") and PARTIAL_MARK in e.name
        ]
    except FileNotFoundError:
        return removed
    for entry in entries:
        if not entry.is_dir(follow_symlinks=False):
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)  # a live run is writing it
            continue
        try:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
        finally:
            os.close(fd)
    return removed


def _check_output(output: Path) -> None:
    if output.name in ("", ".", ".."):
        raise UsageError(f"output {output} does not name a folder")
    empty_folder = output.is_dir() and not output.is_symlink() and not any(output.iterdir())
    if (output.is_symlink() or output.exists()) and not empty_folder:
        raise UsageError(f"output {output} already exists; delete it or choose another name")


def _locked_partial(output: Path) -> tuple[Path, int]:
    """A fresh partial folder, locked by this process before anyone can take it for stale."""
    while True:
        partial = output.parent / f".{output.name}{PARTIAL_MARK}{secrets.token_hex(4)}"
        try:
            partial.mkdir()
        except FileExistsError:
            continue
        fd = os.open(partial, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another run's cleanup holds it: it will be gone soon
            os.close(fd)
            continue
        if os.fstat(fd).st_nlink == 0:  # removed as stale before the lock was ours
            os.close(fd)
            continue
        return partial, fd


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
