"""What ``make demo`` asks for, in one place: its dataset, its training test, its training and
its evaluation. The demo sends these over HTTP; the tiny-recipe benchmark and the test that
holds the demo to really learning run the same work as stage processes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

DEMO_DATASET: dict[str, Any] = {
    "source": "synthetic",
    "train_size": 48,
    "val_size": 8,
    "views": ["front", "top", "right"],
    "resolution": 512,
}
# the spec's training test: 100 train and 20 validation samples, 5 epochs
DEMO_TEST_RUN: dict[str, Any] = {
    "train_samples": 100,
    "val_samples": 20,
    "epochs": 5,
    "batch_size": 4,
}
# the full training the demo starts when the test-run says "excellent": the test-run's recipe
# (stages/train/config.py) for 20 epochs of the 144 records, with the full mode's warm-up and
# cosine schedule (at this rate, runs of 40 epochs turned unstable)
DEMO_TRAINING: dict[str, Any] = {
    "epochs": 20,
    "batch_size": 4,
    "gradient_accumulation": 1,
    "lora_r": 32,
    "lora_alpha": 128,
    "lora_dropout": 0.0,
    "learning_rate": 0.005,
}
DEMO_EVAL_SAMPLES = 24  # every validation record of the demo's dataset


def write_demo_dataset(folder: Path, python: str = sys.executable) -> Path:
    """The demo's dataset, written by the stage processes the service would run (the same
    flags); kept when ``dataset.json`` says its conversion completed."""
    manifest = folder / "dataset.json"
    if manifest.is_file():
        conversion = json.loads(manifest.read_text()).get("conversion", {})
        if conversion.get("status") == "completed":
            return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    d = DEMO_DATASET
    steps = [
        ["stages.extract", "--source", d["source"], "--train-size", str(d["train_size"]),
         "--val-size", str(d["val_size"]), "--output", str(folder)],
        ["stages.render", "--input", str(folder), "--views", ",".join(d["views"]),
         "--resolution", str(d["resolution"])],
        ["stages.convert", "--dataset", str(folder), "--randomize-templates"],
    ]  # fmt: skip
    for step in steps:
        subprocess.run([python, "-m", *step, "--progress", "none"], cwd=REPO, check=True)
    return folder


def stage_flags(settings: dict[str, Any]) -> list[str]:
    """``{"lora_r": 32, "lora_vision": True}`` as the stage's ``--lora-r 32 --lora-vision``."""
    flags: list[str] = []
    for key, value in settings.items():
        flag = key.replace("_", "-")
        if isinstance(value, bool):
            flags.append(f"--{flag}" if value else f"--no-{flag}")
        else:
            flags += [f"--{flag}", str(value)]
    return flags
