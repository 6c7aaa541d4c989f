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


def make_config(var_dir: Path, **overrides: Any) -> Config:
    base = Config(
        var_dir=var_dir,
        stages_package="tests.fake_stages",
        kill_grace_s=3.0,  # well above the 0.3 s the escalation test waits, on a slow machine too
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
