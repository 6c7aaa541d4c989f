"""Where models come from: a DeepCAD root, a flat folder of DeepCAD files, or the generator.

A source lists the models of each split and hands them out as ``Candidate`` values in the
order they should be tried (a seeded sample first, replacements after). Opening a source is
cheap (no model is parsed), so the server asks ``describe_source`` at request time and answers
422 when the source is unusable, instead of failing a job later.

``python -m stages.extract.sources --source K [--root DIR]`` prints that description as JSON,
or ``{"error": ..., "field": ...}`` and exits 2.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from stages.dataset.layout import MODELS_FOLDER
from stages.extract.sampling import (
    TRAIN,
    VALIDATION,
    hashed_split,
    interleaved_splits,
    seeded_order,
    unique_in_order,
)
from stages.protocol import EXIT_USAGE, JsonErrorParser, UsageError

SOURCE_KINDS = ("synthetic", "deepcad")
SPLITS = (TRAIN, VALIDATION)
ROOT_VARIABLE = "DEEPCAD_ROOT"
# DeepCAD's own split file (a source format); its models sit as in a dataset, under cad_json/.
DEEPCAD_SPLIT_FILE = "train_val_test_split.json"
# A model's file stem and a split entry ("0067/00675619"): plain names, never a path escape.
MODEL_STEM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
SPLIT_ENTRY = re.compile(r"^[A-Za-z0-9_-]+/[A-Za-z0-9][A-Za-z0-9_-]*$")
# The generator is asked for this many times the requested models (it is lazy, so unused ones
# cost nothing); enough for replacements even when filters reject most of them.
SYNTHETIC_STREAM_FACTOR = 8
SYNTHETIC_STREAM_SLACK = 256


@dataclass(frozen=True, slots=True)
class Candidate:
    """One model to try: a file in the source (``path``) or a generated model (``text``)."""

    model_id: str
    path: str | None = None
    text: str | None = None


class Source(Protocol):
    kind: str
    root: Path | None

    def available(self, split: str) -> int | None:
        """How many models the split holds; None when there is no fixed number."""
        ...

    def candidates(self, split: str) -> Iterator[Candidate]:
        """The split's models in the order to try them."""
        ...

    def close(self) -> None:
        """Release what the source holds open (the generator's worker processes)."""
        ...


class DeepcadSource:
    """A DeepCAD root (``cad_json/NNNN/*.json`` and ``train_val_test_split.json``) or a flat
    folder of ``*.json`` whose split is derived from a hash of each id."""

    kind = "deepcad"

    def __init__(self, root: Path, seed: int = 0) -> None:
        self.root = _checked_root(root)
        self.seed = seed
        self.layout = "split_file" if (self.root / DEEPCAD_SPLIT_FILE).is_file() else "flat"
        if self.layout == "split_file":
            self._entries = _read_split_file(self.root)
        else:
            self._entries = _flat_split(self.root)

    def available(self, split: str) -> int:
        return len(self._entries[split])

    def candidates(self, split: str) -> Iterator[Candidate]:
        for entry in seeded_order(self._entries[split], self.seed, split):
            yield Candidate(model_id=entry.rsplit("/", 1)[-1], path=str(self._path(entry)))

    def close(self) -> None:
        pass

    def _path(self, entry: str) -> Path:
        if self.layout == "split_file":
            return self.root / MODELS_FOLDER / f"{entry}.json"
        return self.root / f"{entry}.json"


class SyntheticSource:
    """Models from the synthetic generator, one seeded stream cut into train and validation
    by position (see ``sampling.interleaved_splits``): needs no files."""

    kind = "synthetic"
    root = None

    def __init__(self, seed: int, train_size: int, val_size: int, workers: int = 1) -> None:
        from stages.cad.synth import generate_models  # the generator is heavy: load on use

        count = SYNTHETIC_STREAM_FACTOR * (train_size + val_size) + SYNTHETIC_STREAM_SLACK
        self._models = generate_models(count, seed, workers=workers)
        self._stream = zip(interleaved_splits(train_size, val_size), self._models, strict=False)
        self._waiting: dict[str, deque[Candidate]] = {split: deque() for split in SPLITS}

    def available(self, split: str) -> None:
        return None

    def candidates(self, split: str) -> Iterator[Candidate]:
        waiting = self._waiting[split]
        while True:
            if waiting:
                yield waiting.popleft()
                continue
            item = next(self._stream, None)
            if item is None:
                return
            label, (model_id, data) = item
            text = json.dumps(data, separators=(",", ":"))
            self._waiting[label].append(Candidate(model_id=model_id, text=text))

    def close(self) -> None:
        close = getattr(self._models, "close", None)
        if close is not None:
            close()


def resolve_root(root: str | None) -> Path:
    """The DeepCAD root from ``--root`` or ``DEEPCAD_ROOT``; a UsageError says what to set."""
    value = root or os.environ.get(ROOT_VARIABLE)
    if not value:
        raise UsageError(
            f"no DeepCAD root: set {ROOT_VARIABLE} (or pass --root) to a folder holding "
            f"{MODELS_FOLDER}/ and {DEEPCAD_SPLIT_FILE}, or a flat folder of *.json"
        )
    return Path(value)


def open_source(
    kind: str,
    root: str | None,
    *,
    seed: int = 0,
    train_size: int = 0,
    val_size: int = 0,
    workers: int = 1,
) -> Source:
    """The source named by ``kind``; raises UsageError when it cannot be used."""
    if kind == "deepcad":
        return DeepcadSource(resolve_root(root), seed)
    if kind == "synthetic":
        return SyntheticSource(seed, train_size, val_size, workers)
    raise UsageError(f"unknown source {kind!r}; use one of {', '.join(SOURCE_KINDS)}")


def describe_source(kind: str, root: str | None) -> dict[str, Any]:
    """What the server needs before accepting an extract: is the source usable, and how many
    models each split holds (None: no limit). Fast: lists files, parses none."""
    if kind == "synthetic":
        return {"kind": kind, "root": None, "train_available": None, "validation_available": None}
    source = open_source(kind, root)
    return {
        "kind": kind,
        "root": str(source.root),
        "train_available": source.available(TRAIN),
        "validation_available": source.available(VALIDATION),
    }


# -- reading a DeepCAD root ---------------------------------------------------------------------


def _checked_root(root: Path) -> Path:
    hint = f"set {ROOT_VARIABLE} (or --root) to a DeepCAD root"
    if not root.exists():
        raise UsageError(f"DeepCAD root {root} does not exist: {hint}")
    if not root.is_dir():
        raise UsageError(f"DeepCAD root {root} is not a folder: {hint}")
    if not os.access(root, os.R_OK | os.X_OK):
        raise UsageError(f"DeepCAD root {root} is not readable: {hint}")
    return root.resolve()


def _read_split_file(root: Path) -> dict[str, list[str]]:
    """Split entries ("NNNN/stem") per split; an id listed in both keeps only its train place."""
    path = root / DEEPCAD_SPLIT_FILE
    try:
        with path.open("rb") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{path} is not a JSON object with train and validation lists")
    if not (root / MODELS_FOLDER).is_dir():
        raise UsageError(
            f"DeepCAD root {root} has {DEEPCAD_SPLIT_FILE} but no {MODELS_FOLDER}/ folder"
        )
    entries: dict[str, list[str]] = {}
    for split in SPLITS:
        listed = data.get(split)
        if not isinstance(listed, list):
            raise UsageError(f"{path} has no {split!r} list")
        entries[split] = unique_in_order(
            e for e in listed if isinstance(e, str) and SPLIT_ENTRY.match(e)
        )
    train_ids = {entry.rsplit("/", 1)[-1] for entry in entries[TRAIN]}
    entries[VALIDATION] = [e for e in entries[VALIDATION] if e.rsplit("/", 1)[-1] not in train_ids]
    return entries


def _flat_split(root: Path) -> dict[str, list[str]]:
    """Every ``*.json`` of the folder, split by a hash of its stem (sorted, so stable)."""
    try:
        stems = sorted(
            entry.name[: -len(".json")]
            for entry in os.scandir(root)
            if entry.name.endswith(".json") and MODEL_STEM.match(entry.name[: -len(".json")])
        )
    except OSError as exc:
        raise UsageError(f"cannot list DeepCAD root {root}: {exc.strerror or exc}") from exc
    if not stems:
        raise UsageError(
            f"DeepCAD root {root} holds neither {DEEPCAD_SPLIT_FILE} nor any *.json model: "
            f"set {ROOT_VARIABLE} (or --root) to a DeepCAD root"
        )
    entries: dict[str, list[str]] = {split: [] for split in SPLITS}
    for stem in stems:
        entries[hashed_split(stem)].append(stem)
    return entries


# -- the request-time check the server runs ------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = JsonErrorParser(
        prog="python -m stages.extract.sources", description="describe an extract source"
    )
    parser.add_argument("--source", required=True, choices=SOURCE_KINDS)
    parser.add_argument("--root", default=None, help=f"DeepCAD root (default: ${ROOT_VARIABLE})")
    args = parser.parse_args(argv)
    try:
        description = describe_source(args.source, args.root)
    except UsageError as exc:
        print(json.dumps({"error": str(exc), "field": "source"}))
        return EXIT_USAGE
    print(json.dumps(description))
    return 0


if __name__ == "__main__":
    sys.exit(main())
