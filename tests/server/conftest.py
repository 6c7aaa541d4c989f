"""A real server (pytest-aiohttp) over a temporary var/ folder, running fake stages."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from server.app import create_app
from server.appkeys import RUNNER
from server.config import Config
from stages.dataset.manifest import (
    COMPLETED,
    CONVERSION,
    EXTRACTION,
    RENDERING,
    new_manifest,
    write_manifest,
)
from stages.train.synthetic import write_synthetic_dataset


def make_config(var_dir: Path, **overrides: Any) -> Config:
    base = Config(
        var_dir=var_dir,
        stages_package="tests.fake_stages",
        kill_grace_s=3.0,  # a fake stage ends at SIGTERM long before this, on a slow machine too
        train_kill_grace_s=4.0,
        heartbeat_s=0.5,
    )
    return dataclasses.replace(base, **overrides)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path / "var")


@pytest.fixture
async def client(aiohttp_client: Callable, config: Config):
    return await aiohttp_client(create_app(config))


def install_dataset(config: Config, name: str, *completed: str) -> Path:
    """A dataset folder whose manifest says the ``completed`` stages are done (and nothing
    else: a stage faked or a job held needs no real files)."""
    folder = config.data_root / name
    folder.mkdir(parents=True)
    manifest = new_manifest(name)
    manifest["stages"].update(dict.fromkeys(completed, COMPLETED))
    write_manifest(folder, manifest)
    return folder


# A full training run of the tiny model over HTTP in seconds: 4 records, 2 epochs, 8 steps.
TRAIN_CONFIG = {"epochs": 2, "batch_size": 1, "gradient_accumulation": 1, "lora_r": 4,
                "lora_alpha": 8, "device": "cpu", "train_samples": 4, "val_samples": 1,
                "eval_samples": 1}  # fmt: skip
TRAIN_STEPS = 8


def install_converted_dataset(config: Config, name: str) -> Path:
    """A small converted dataset (records and images) that real training can run on."""
    folder = install_dataset(config, name, EXTRACTION, RENDERING, CONVERSION)
    write_synthetic_dataset(folder, 4, 1, image_size=32)
    return folder


def assert_resumed_at(events: list[tuple[str, dict]], step: int) -> None:
    """A job's ``(event, data)`` log shows two attempts, the second continuing after ``step``:
    it starts by reporting ``step`` as done by the first, and reports no step up to it again."""
    attempts: dict[int, list[tuple[str, dict]]] = {}
    attempt = 0
    for name, data in events:
        if name == "status" and data.get("status") == "running":
            attempt = data["attempt"]
        elif name in ("progress", "metric"):
            attempts.setdefault(attempt, []).append((name, data))
    assert sorted(attempts) == [1, 2], attempts.keys()

    def steps(reports: list[tuple[str, dict]]) -> list[int]:
        return [d["step"] if n == "metric" else d["extra"]["step"] for n, d in reports]

    assert max(steps(attempts[1])) == step  # the first attempt stopped at the checkpoint
    first_name, first = attempts[2][0]
    assert first_name == "progress" and first["current"] == first.get("reused") == step, first
    assert steps(attempts[2])[0] == step
    assert all(later > step for later in steps(attempts[2][1:])), steps(attempts[2])


async def submit_fake(client, *args: str, slot: str = "cpu", kind: str = "fake") -> str:
    job = await client.app[RUNNER].submit(kind, "fake", list(args), {"args": list(args)}, slot=slot)
    return job.id


async def wait_for_status(client, job_id: str, statuses: tuple[str, ...], timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = await client.get(f"/training/jobs/{job_id}/progress")
        body = await resp.json()
        if body["status"] in statuses:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} still {body['status']}, wanted {statuses}")


def pid_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
