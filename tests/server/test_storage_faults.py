"""A store or disk that refuses writes never leaves a job ``running`` or its slot held.

One test makes the job store refuse one job's final write (deterministic); the other runs
the server on a real 3 MB tmpfs that a stage fills, as a render at a high resolution did.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from server.app import create_app
from server.appkeys import RUNNER, STORE
from server.http.jobviews import progress_body
from server.jobs.store import TERMINAL
from tests.server.conftest import make_config, submit_fake, wait_for_status


async def wait_for_store(client, job_id: str, statuses: tuple[str, ...], timeout: float = 30):
    """Until the store (not memory) holds one of ``statuses`` for the job."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = await client.app[STORE].get_job(job_id)
        if job is not None and job.status in statuses:
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"the store still holds {job.status if job else None} for {job_id}")


async def test_a_refused_final_write_still_ends_the_job_and_frees_its_slot(client, monkeypatch):
    store = client.app[STORE]
    refused: set[str] = set()
    update_job = store.update_job

    async def refusing(job_id: str, **fields):
        if job_id in refused and fields.get("status") in TERMINAL:
            raise sqlite3.OperationalError("database or disk is full")
        await update_job(job_id, **fields)

    monkeypatch.setattr(store, "update_job", refusing)
    first = await submit_fake(client, "--items", "3", "--behaviour", "forever")
    refused.add(first)
    behind = await submit_fake(client, "--items", "3")  # one CPU slot: queued behind it
    await wait_for_status(client, first, ("running",))
    assert (await client.post(f"/training/jobs/{first}/cancel")).status == 202

    ended = await wait_for_status(client, first, ("failed",))
    assert "could not be recorded" in ended["error"]
    assert (await store.get_job(first)).status == "running"  # the fault really happened
    assert (await wait_for_status(client, behind, ("completed",)))["status"] == "completed"
    resp = await client.post(f"/training/jobs/{first}/cancel")
    assert resp.status == 409 and resp.content_type == "application/problem+json"

    refused.clear()  # the disk has room again: the next flush records the end
    healed = await wait_for_store(client, first, ("failed",))
    assert "could not be recorded" in healed.error
    assert first not in client.app[RUNNER].recorder.unrecorded


@pytest.fixture
def small_disk(tmp_path: Path):
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


async def test_a_full_disk_leaves_no_job_running_and_heals_when_space_returns(
    aiohttp_client, small_disk: Path
):
    client = await aiohttp_client(create_app(make_config(small_disk / "var")))
    filler = small_disk / "filler"
    first = await submit_fake(client, "--items", "2", "--fill", str(filler))
    behind = await submit_fake(client, "--items", "2")

    runner = client.app[RUNNER]
    ended = progress_body(await runner.wait(first, 60))
    behind_ended = progress_body(await runner.wait(behind, 60))
    assert ended["status"] in TERMINAL and behind_ended["status"] in TERMINAL
    assert not runner.live  # no job held as running, no slot taken
    for job_id in (first, behind):
        resp = await client.post(f"/training/jobs/{job_id}/cancel")
        assert resp.status == 409, await resp.text()

    filler.unlink()  # space again: every end reaches the store, and new jobs run
    for job_id, seen in ((first, ended), (behind, behind_ended)):
        assert (await wait_for_store(client, job_id, TERMINAL)).status == seen["status"]
    after = await submit_fake(client, "--items", "2")
    assert (await wait_for_status(client, after, TERMINAL))["status"] == "completed"
    with contextlib.suppress(FileNotFoundError):
        filler.unlink()
