"""Training jobs of several processes (``gpus``) over HTTP: torchrun ranks on a CPU (gloo).

A job asking for N processes takes N gpu slots; one asking for more than the service has is
a 422 naming ``gpus``. The 2-rank job is the real stage, held after its first step by the
tests' wrapper (``tests.fake_stages.train``) until the test lets it go on, so the queue is
looked at while the job certainly runs.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import pytest

from server.app import create_app
from server.appkeys import RUNNER, STORE
from server.jobs.process import group_processes, stage_command
from stages.torchrun import Launch
from tests.server.conftest import (
    TRAIN_CONFIG,
    install_converted_dataset,
    make_config,
    wait_for_status,
)


async def wait_for_file(path: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        await asyncio.sleep(0.05)


async def test_more_processes_than_gpu_slots_is_a_422_naming_gpus(
    aiohttp_client, tmp_path: Path
) -> None:
    config = make_config(tmp_path / "var", gpu_slots=2)
    client = await aiohttp_client(create_app(config))
    install_converted_dataset(config, "tr")
    body = {"dataset": "tr", "config": {**TRAIN_CONFIG, "gpus": 3}}
    resp = await client.post("/training/start", data=json.dumps(body))
    assert resp.status == 422
    problem = await resp.json()
    assert problem["field"] == "config.gpus" and "gpu slots" in problem["detail"]
    resp = await client.post("/training/test-run", data=json.dumps({"dataset": "tr", "gpus": 3}))
    assert resp.status == 422 and (await resp.json())["field"] == "gpus"
    body = {"dataset": "tr", "config": {"nnodes": 2}}
    resp = await client.post("/training/start", data=json.dumps(body))
    assert resp.status == 422 and (await resp.json())["field"] == "config.rdzv_endpoint"
    assert await client.app[STORE].holder("tr") is None  # nothing was claimed


@pytest.mark.slow
async def test_a_two_process_job_takes_two_gpu_slots_and_completes(
    aiohttp_client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held, release = tmp_path / "held", tmp_path / "release"
    monkeypatch.setenv("FAKE_TRAIN_HOLD_STEP", "1")
    monkeypatch.setenv("FAKE_TRAIN_HELD", str(held))
    monkeypatch.setenv("FAKE_TRAIN_RELEASE", str(release))
    config = make_config(tmp_path / "var", gpu_slots=2, train_kill_grace_s=120)
    client = await aiohttp_client(create_app(config))
    install_converted_dataset(config, "a")
    install_converted_dataset(config, "b")

    body = {"dataset": "a", "config": {**TRAIN_CONFIG, "gpus": 2}}
    resp = await client.post("/training/start", data=json.dumps(body))
    assert resp.status == 202, await resp.text()
    first = (await resp.json())["job_id"]
    await wait_for_file(held)  # its rank 0 has trained step 1 and waits; rank 1 waits for it
    runner = client.app[RUNNER]
    assert runner.slots_in_use("gpu") == 2

    resp = await client.post("/training/test-run", data=json.dumps({"dataset": "b"}))
    assert resp.status == 202, await resp.text()
    second = (await resp.json())["job_id"]
    progress = await (await client.get(f"/training/jobs/{second}/progress")).json()
    assert progress["status"] == "queued"  # one slot is needed, none is free
    pgid = runner.live[first].process.pid
    assert len(group_processes(pgid)) == 3  # torchrun and its 2 ranks, in the job's group

    release.touch()
    done = await wait_for_status(client, first, ("completed", "failed"), timeout=300)
    assert done["status"] == "completed", done
    assert group_processes(pgid) == []
    status = await (await client.get(f"/training/{first}/status")).json()
    assert status["result"]["world_size"] == 2
    assert status["progress"]["current_step"] == status["progress"]["total_steps"] == 4
    done = await wait_for_status(client, second, ("completed", "failed"), timeout=300)
    assert done["status"] == "completed", done


def test_a_job_command_line_for_one_node_and_for_two(tmp_path: Path) -> None:
    """What the runner starts: the stage alone, or torchrun around it (given the training kill
    grace to let a signalled rank checkpoint); for 2 nodes, the c10d rendezvous the other
    node's torchrun meets it at."""
    config = make_config(tmp_path / "var", train_kill_grace_s=120)
    args = ["--dataset", "d", "--gpus", "2"]
    alone = stage_command(config, "train", args, Launch())
    assert alone == [sys.executable, "-m", "tests.fake_stages.train", *args]
    assert stage_command(config, "train", args, None) == alone
    two_nodes = stage_command(config, "train", args, Launch(2, 2, "node0:29400", "training_1"))
    assert two_nodes == [
        sys.executable, "-m", "stages.torchrun", "--nproc-per-node", "2", "--nnodes", "2",
        "--rdzv-backend", "c10d", "--rdzv-endpoint", "node0:29400", "--rdzv-id", "training_1",
        "--shutdown-timeout", "120", "-m", "tests.fake_stages.train", *args,
    ]  # fmt: skip
