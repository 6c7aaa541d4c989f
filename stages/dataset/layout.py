"""Where things live in a dataset folder, and how image names map to models and views.

The folder is the shared contract between the stages and the server, and this module is the
only place that knows it: ``dataset.json`` is the manifest, ``split.json`` says which models
are train and which validation, ``models.json`` what extraction measured of each model,
``cad_json/NNNN/<model_id>.json`` holds the models, ``images/<model_id>_<view>.png`` the
renders, ``train.json``/``val.json`` the records, ``skipped.json`` the models a stage left out
and why, and ``validation.json`` the last report. Record images are named relative to
``images/``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "dataset.json"
SPLIT_FILE = "split.json"
MODELS_INDEX = "models.json"
MODELS_FOLDER = "cad_json"
IMAGES_FOLDER = "images"
RECORD_FILES = {"train": "train.json", "val": "val.json"}
REPORT_FILE = "validation.json"
SKIPS_FILE = "skipped.json"
# split.json's key for each side of the records.
SPLIT_KEYS = {"train": "train", "val": "validation"}

LAYOUTS = ("per_view", "composite", "iso")
COMPOSITE = "composite"
ISO = "iso"


class DatasetError(ValueError):
    """The dataset folder lacks something a stage cannot start without."""


def normalise_id(model_id: str) -> str:
    """``0000/00000007``, ``00000007.json`` or ``00000007`` -> ``00000007``."""
    stem = str(model_id).strip().replace("\\", "/").rsplit("/", 1)[-1]
    return stem.removesuffix(".json")


def read_split(dataset: Path) -> dict[str, list[str]]:
    """``{"train": [...], "val": [...]}`` from ``split.json`` (ids normalised, order kept)."""
    path = dataset / SPLIT_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DatasetError(f"no {SPLIT_FILE} in {dataset}") from exc
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read {SPLIT_FILE}: {exc}") from exc
    if not isinstance(data, dict):
        raise DatasetError(f"{SPLIT_FILE} must be an object with train and validation lists")
    split: dict[str, list[str]] = {}
    for side, key in SPLIT_KEYS.items():
        ids = data.get(key, [])
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise DatasetError(f"{SPLIT_FILE}: {key!r} must be a list of model ids")
        split[side] = list(dict.fromkeys(normalise_id(i) for i in ids))
    return split


def model_relpath(model_id: str) -> str:
    """A model's file in a dataset (and in a DeepCAD root): ``cad_json/NNNN/<id>.json``."""
    return f"{MODELS_FOLDER}/{model_id[:4]}/{model_id}.json"


def model_file(dataset: Path, model_id: str) -> Path:
    return dataset / model_relpath(model_id)


def find_model_file(dataset: Path, model_id: str) -> Path | None:
    """A model's file: at its usual place, else anywhere under ``cad_json/`` (flat sources)."""
    usual = model_file(dataset, model_id)
    if usual.is_file():
        return usual
    root = dataset / MODELS_FOLDER
    matches = sorted(root.rglob(f"{model_id}.json")) if root.is_dir() else []
    return matches[0] if matches else None


def find_model_files(dataset: Path) -> dict[str, Path]:
    """Every model file under ``cad_json/`` by id (its stem); the first of repeated stems wins."""
    root = dataset / MODELS_FOLDER
    if not root.is_dir():
        raise DatasetError(f"no {MODELS_FOLDER}/ folder in {dataset}")
    found: dict[str, Path] = {}
    for folder, _dirs, files in os.walk(root):
        for name in sorted(files):
            if name.endswith(".json") and not name.startswith("."):
                found.setdefault(name[: -len(".json")], Path(folder) / name)
    return found


def images_dir(dataset: Path) -> Path:
    return dataset / IMAGES_FOLDER


def record_file(dataset: Path, split: str) -> Path:
    return dataset / RECORD_FILES[split]


def image_file_name(model_id: str, view: str) -> str:
    """The one spelling of a rendered image's name."""
    return f"{model_id}_{view}.png"


def count_images(dataset: Path) -> int:
    """How many PNG images the dataset holds (one directory listing)."""
    return sum(1 for name in list_images(dataset) if name.endswith(".png"))


def folder_size(path: Path) -> int:
    """Bytes of every file below ``path`` (files that vanish meanwhile are skipped)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def list_images(dataset: Path) -> set[str]:
    """Names of the files in ``images/``: one directory listing instead of a stat per record."""
    try:
        return {entry.name for entry in os.scandir(dataset / IMAGES_FOLDER) if entry.is_file()}
    except FileNotFoundError:
        return set()


@dataclass(frozen=True, slots=True)
class ImageSlot:
    """One image a record is made on: ``view`` is a view name, ``composite`` or ``iso``."""

    model_id: str
    view: str

    @property
    def record_id(self) -> str:
        return f"{self.model_id}_{self.view}"

    @property
    def file_name(self) -> str:
        return image_file_name(self.model_id, self.view)


def image_slots(model_id: str, layout: str, views: tuple[str, ...]) -> list[ImageSlot]:
    """The images a model's records use under ``layout``."""
    if layout == "per_view":
        return [ImageSlot(model_id, view) for view in views]
    if layout == "composite":
        return [ImageSlot(model_id, COMPOSITE)]
    if layout == "iso":
        return [ImageSlot(model_id, ISO)]
    raise ValueError(f"unknown layout {layout!r} (known: {', '.join(LAYOUTS)})")


def model_id_of_image(image: str) -> str:
    """``00000007_front.png`` -> ``00000007``: the view is the part after the last ``_``."""
    stem = Path(image).name.removesuffix(".png")
    return stem.rsplit("_", 1)[0] if "_" in stem else stem
