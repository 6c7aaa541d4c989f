"""Training runs written by a test as the training stage leaves them: a converted dataset, a
finished training job's row, and a run directory with a tiny base model and LoRA checkpoints
(random non-zero weights, the trainer state with each epoch's validation loss)."""

from __future__ import annotations

import json
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from server.appkeys import CONFIG, STORE
from server.jobs.store import Job
from stages.train.data import read_split, record_texts
from stages.train.lora import attach_lora
from stages.train.models import load_base_model, resolve_base_model
from stages.train.runs import STATE_FILE
from stages.train.synthetic import write_synthetic_dataset
from stages.train.tiny import build_tiny_checkpoint
from tests.server.conftest import install_dataset

DATASET = "exp"


# --- runs --------------------------------------------------------------------------------------
def converted_dataset(config, name: str = DATASET, train: int = 4, val: int = 2) -> Path:
    """A dataset whose manifest says it is converted, with real records and images."""
    folder = install_dataset(config, name, "extraction", "rendering", "conversion")
    return write_synthetic_dataset(folder, train, val, image_size=32, seed=1)


async def training_job(client, status: str = "completed", dataset: str = DATASET) -> Job:
    """A training job row as the runner leaves one (its run directory is up to the test)."""
    job = Job(
        id=f"training_test_{secrets.token_hex(5)}", kind="training_test", status=status,
        dataset=dataset, slot="gpu", argv=[], params={}, created_at=time.time(),
    )  # fmt: skip
    store = client.app[STORE]
    await store.create_job(job)
    await store.release(dataset, job.id)  # a finished job holds nothing
    return job


def run_dir(client, job: Job) -> Path:
    return client.app[CONFIG].checkpoints_root / (job.dataset or "") / job.id


def write_adapter(base: Path, directory: Path, seed: int, vision: bool = False) -> Path:
    """A LoRA adapter on ``base`` with random (non-zero) weights, saved by peft."""
    bundle = load_base_model(resolve_base_model(str(base)))
    torch.manual_seed(seed)
    model = attach_lora(bundle, r=4, alpha=8, dropout=0.0, include_vision=vision)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:  # LoRA A and B, and the connector trained fully
                param.add_(0.05 * torch.randn_like(param))
    model.save_pretrained(directory)
    return directory


def write_run(root: Path, base: Path, val_losses: list[float], vision: bool = False) -> None:
    """Checkpoints at steps 2, 4, ... (epoch i ends at step 2i with val_losses[i]), each with
    the trainer state the training stage writes, and the last one's adapter as the final."""
    epochs: list[dict[str, Any]] = []
    for index, val_loss in enumerate(val_losses):
        step = 2 * (index + 1)
        epochs.append({"epoch": index + 1, "step": step, "train_loss": 3.0, "val_loss": val_loss})
        folder = write_adapter(base, root / "checkpoints" / f"step-{step:08d}", index, vision)
        (folder / STATE_FILE).write_text(json.dumps({"step": step, "epochs": epochs}))
    shutil.copytree(folder, root / "adapter", ignore=shutil.ignore_patterns(STATE_FILE))


def write_tiny_run(root: Path, dataset: Path, val_losses: list[float]) -> None:
    """A run on the tiny model, built into the run as training builds it (32 px)."""
    texts = record_texts(read_split(dataset, "train"), 100)
    build_tiny_checkpoint(root / "base_model", texts, image_size=32)
    write_run(root, root / "base_model", val_losses)
