"""Small dataset folders made from the real DeepCAD samples, as extract and render leave them,
and the converted dataset the convert and validate tests share.

Images are tiny PNGs drawn with Pillow rather than renders: these tests are about records,
not pictures, and rendering would cost seconds per model. The ``converted`` and
``dataset_copy`` fixtures are defined here and imported by the conftest of ``tests/convert``
and of ``tests/validate``.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from stages.convert.run import ConvertOptions, convert_dataset
from stages.dataset.tokens import DEFAULT_MAX_ANSWER_TOKENS, EstimatedCounter
from stages.protocol import Reporter
from tests.conftest import DEEPCAD_SAMPLES, REPO_ROOT

# 00000176 has no geometry: it parses, but writes no code and builds no solid.
EMPTY_SAMPLE = "00000176"
TRAIN_IDS = (
    "00000007",
    "00000061",
    "00000073",
    "00000126",
    "00000131",
    "00000144",
    "00000172",
    "00000329",
    EMPTY_SAMPLE,
)
VAL_IDS = ("00000330", "00000767", "00001616", "00003999", "00005081", "00633023")
VIEWS = ("front", "top", "right")
RESOLUTION = 64


def write_png(path: Path, size: int, mark: int = 0) -> None:
    """A white square with a small dark box, so images differ and decode to real pixels."""
    image = Image.new("RGB", (size, size), (255, 255, 255))
    offset = 4 + mark % (size // 2)
    ImageDraw.Draw(image).rectangle((offset, offset, offset + 8, offset + 8), fill=(30, 30, 30))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG", compress_level=1)


def make_dataset(
    root: Path,
    train: Iterable[str] = TRAIN_IDS,
    val: Iterable[str] = VAL_IDS,
    image_names: Iterable[str] = (*VIEWS, "composite", "iso"),
    resolution: int = RESOLUTION,
    manifest_resolution: bool = True,
) -> Path:
    """A dataset folder: cad_json/NNNN/<id>.json, split.json, images/<id>_<name>.png and a
    manifest that records the render resolution."""
    train, val, image_names = list(train), list(val), list(image_names)
    for number, model_id in enumerate(train + val):
        target = root / "cad_json" / model_id[:4] / f"{model_id}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DEEPCAD_SAMPLES / f"{model_id}.json", target)
        for index, name in enumerate(image_names):
            write_png(root / "images" / f"{model_id}_{name}.png", resolution, number * 7 + index)
    split = {"train": [f"{i[:4]}/{i}" for i in train], "validation": list(val)}
    (root / "split.json").write_text(json.dumps(split))
    manifest: dict = {"name": root.name, "stages": {"rendering": "completed"}}
    if manifest_resolution:
        manifest["render"] = {"views": list(VIEWS), "resolution": resolution}
    (root / "dataset.json").write_text(json.dumps(manifest))
    return root


def read_records(dataset: Path, name: str) -> list[dict]:
    return json.loads((dataset / name).read_text(encoding="utf-8"))


def write_records(dataset: Path, name: str, records: list[dict]) -> None:
    (dataset / name).write_text(json.dumps(records), encoding="utf-8")


def read_manifest(dataset: Path) -> dict:
    return json.loads((dataset / "dataset.json").read_text(encoding="utf-8"))


def convert_options(**changes: object) -> ConvertOptions:
    values: dict = {
        "layout": "per_view",
        "views": VIEWS,
        "randomize_templates": True,
        "seed": 0,
        "max_answer_tokens": DEFAULT_MAX_ANSWER_TOKENS,
        "workers": 1,
    }
    values.update(changes)
    return ConvertOptions(**values)


def quiet_reporter(stage: str) -> Reporter:
    return Reporter(stage, mode="json", out=io.StringIO())


def run_convert(dataset: Path, **changes: object) -> dict:
    """The convert stage's work in this process (the manifest is not touched)."""
    return convert_dataset(
        dataset, convert_options(**changes), EstimatedCounter(), quiet_reporter("convert")
    )


def run_stage_cli(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m module --progress json args`` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", module, "--progress", "json", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="session")
def converted(tmp_path_factory: pytest.TempPathFactory, deepcad_samples: Path) -> Path:
    """The samples as a rendered and converted dataset (per_view, default budget)."""
    dataset = make_dataset(tmp_path_factory.mktemp("converted") / "samples")
    run_convert(dataset)
    return dataset


@pytest.fixture
def dataset_copy(converted: Path, tmp_path: Path) -> Callable[[], Path]:
    """A fresh copy of the converted dataset, to corrupt in one way."""

    def copy() -> Path:
        return Path(shutil.copytree(converted, tmp_path / "copy"))

    return copy
