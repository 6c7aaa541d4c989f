"""Training jobs over HTTP with the real training stage, held at a known step by the tests'
wrapper of it (``tests.fake_stages.train``), so a cancel lands where the test says."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from server.app import create_app
from server.appkeys import CONFIG, STORE
from stages.train.checkpoint import STATE_FILE, RunLayout, latest_checkpoint
from tests.server.conftest import (
    TRAIN_CONFIG,
    TRAIN_STEPS,
    assert_resumed_at,
    install_converted_dataset,
    make_config,
    wait_for_status,
)


async def wait_for_file(path: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        await asyncio.sleep(0.05)


def checkpoint_step(run_dir: Path) -> int:
    checkpoint = latest_checkpoint(RunLayout(run_dir))
    assert checkpoint is not None, f"no checkpoint under {run_dir}"
    return json.loads((checkpoint / STATE_FILE).read_text())["step"]


@pytest.mark.slow
async def test_training_cancel_and_resume_over_http(
    aiohttp_client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cancel at step 3 saves a checkpoint there; the resumed job continues after it,
    repeats no step, and finishes the run."""
    held = tmp_path / "held"
    monkeypatch.setenv("FAKE_TRAIN_HOLD_STEP", "3")
    monkeypatch.setenv("FAKE_TRAIN_HELD", str(held))
    config = make_config(tmp_path / "var", train_kill_grace_s=120)
    client = await aiohttp_client(create_app(config))
    install_converted_dataset(config, "tr")

    body = {"dataset": "tr", "config": TRAIN_CONFIG}
    resp = await client.post("/training/start", data=json.dumps(body))
    assert resp.status == 202, await resp.text()
    started = await resp.json()
    job_id = started["job_id"]
    assert started["checkpoint_dir"] == f"checkpoints/tr/{job_id}"
    await wait_for_file(held)  # step 3 is trained and the stage waits: cancel it there
    status = await (await client.get(f"/training/{job_id}/status")).json()
    assert status["status"] == "training"
    assert (await client.post(f"/training/jobs/{job_id}/cancel")).status == 202
    await wait_for_status(client, job_id, ("cancelled",), timeout=120)
    run_dir = client.app[CONFIG].checkpoints_root / "tr" / job_id
    assert checkpoint_step(run_dir) == 3

    resp = await client.post(f"/training/jobs/{job_id}/resume")
    assert resp.status == 202, await resp.text()
    done = await wait_for_status(client, job_id, ("completed", "failed"), timeout=300)
    assert done["status"] == "completed", done
    events = await client.app[STORE].events_after(job_id, limit=1_000_000)
    assert_resumed_at([(name, data) for _seq, name, data, _ts in events], 3)
    status = await (await client.get(f"/training/{job_id}/status")).json()
    progress = status["progress"]
    assert progress["current_step"] == progress["total_steps"] == TRAIN_STEPS
    assert status["metrics"]["current_loss"] is not None
    assert status["result"]["steps"] == TRAIN_STEPS
    assert (run_dir / "adapter").is_dir()
    # The run scored its best checkpoint (by validation loss) on a validation record.
    best = status["best_checkpoint"]
    listing = await (await client.get(f"/training/{job_id}/checkpoints")).json()
    scored = [c for c in listing["checkpoints"] if c["val_loss"] is not None]
    assert best["name"] == min(scored, key=lambda c: c["val_loss"])["name"] == listing["best"]
    evaluation = status["evaluation"]
    assert evaluation["kind"] == "evaluation" and evaluation["count"] == 1
    assert evaluation["checkpoint"] == best["name"]
    assert 0.0 <= evaluation["invalid_ratio"] <= 1.0
    assert status["result"]["evaluation"]["count"] == 1
