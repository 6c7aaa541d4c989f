"""Service-wide behaviour against a real server: what /training/info says about this host,
CORS for any origin, and a convert/validate request that outlives its sync wait."""

from __future__ import annotations

import asyncio
import os
import platform
from pathlib import Path

import aiohttp
import pytest
import torch

import stages.render as render
from server.app import create_app
from server.config import parse_args
from stages.dataset.layout import LAYOUTS
from stages.dataset.manifest import RENDERING
from stages.train.preflight import mode_defaults
from tests.conftest import DEEPCAD_SAMPLES
from tests.server.conftest import install_dataset, make_config, wait_for_status


async def test_training_info_reports_this_hosts_facts(aiohttp_client, tmp_path: Path) -> None:
    """The frontend reads what it may ask for from /training/info: every figure there must be
    this host's and this configuration's, not a constant."""
    config = make_config(tmp_path / "var", cpu_slots=2, gpu_slots=3, deepcad_root=DEEPCAD_SAMPLES)
    client = await aiohttp_client(create_app(config))
    resp = await client.get("/training/info")
    assert resp.status == 200
    info = await resp.json()
    assert "probe_error" not in info, info["probe_error"]
    assert info["service"] == "cadvlm" and info["version"]
    assert info["stages"] == [
        "extraction", "rendering", "conversion", "validation", "test-run", "training",
    ]  # fmt: skip
    assert info["sources"]["synthetic"]["available"] is True
    assert info["sources"]["deepcad"]["available"] is True
    assert info["sources"]["deepcad"]["configured"] is True
    assert info["formats"] == {"tinyllava": {"layouts": list(LAYOUTS)}}
    rendering = info["rendering"]
    assert rendering["views"] == list(render.VIEWS)
    assert rendering["default_views"] == list(render.DEFAULT_VIEWS)
    assert (rendering["min_resolution"], rendering["max_resolution"]) == (
        render.MIN_RESOLUTION,
        render.MAX_RESOLUTION,
    )
    assert rendering["backend"] == render.backend_name()
    devices = info["devices"]
    assert "cpu" in devices["available"] and "fp32" in devices["precisions"]
    assert ("cuda" in devices["available"]) == torch.cuda.is_available()
    assert ("mps" in devices["available"]) == torch.backends.mps.is_available()
    assert len(devices["cuda_devices"]) == (
        torch.cuda.device_count() if torch.cuda.is_available() else 0
    )
    assert info["training_defaults"] == mode_defaults()
    assert info["slots"] == {"cpu": 2, "gpu": 3}
    # A job takes a gpu slot per process: on CUDA one per GPU, on a CPU gloo ranks up to the slots.
    cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
    gpus = info["training_gpus"]
    assert gpus["cuda_devices"] == cuda and gpus["gpu_slots"] == 3
    assert gpus["max_gpus_per_job"] == (min(cuda, 3) if cuda else 3)
    assert gpus["backend"] == ("nccl" if cuda else "gloo")
    assert info["libraries"]["torch"] == torch.__version__
    assert info["libraries"]["aiohttp"] == aiohttp.__version__
    assert info["python"] == platform.python_version()
    assert info["cpu_count"] == len(os.sched_getaffinity(0))


async def test_training_info_says_deepcad_is_unavailable_without_a_root(client) -> None:
    info = await (await client.get("/training/info")).json()
    assert info["sources"]["deepcad"]["available"] is False
    assert info["sources"]["deepcad"]["configured"] is False


async def test_cors_for_any_origin(aiohttp_client, tmp_path: Path) -> None:
    """``--cors-origins '*'``: a browser on any origin gets through the preflight (which sends
    no token) and can read every answer, errors included."""
    origins = parse_args(["--cors-origins", "*"]).cors_origins
    assert origins == ("*",)
    config = make_config(tmp_path / "var", cors_origins=origins, api_token="s3cret")
    client = await aiohttp_client(create_app(config))
    origin = {"Origin": "http://anywhere.example:5173"}
    preflight = await client.options(
        "/training/datasets/extract",
        headers={**origin, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    allowed = preflight.headers["Access-Control-Allow-Headers"]
    assert "Authorization" in allowed and "Last-Event-ID" in allowed
    auth = {"Authorization": "Bearer s3cret"}
    for path, status in (("/health", 200), ("/training/datasets", 200), ("/nope", 404)):
        resp = await client.get(path, headers={**origin, **auth})
        assert resp.status == status, path
        assert resp.headers["Access-Control-Allow-Origin"] == "*", path
    assert "Access-Control-Allow-Origin" not in (await client.get("/health")).headers


async def test_a_convert_outliving_the_sync_wait_answers_202_with_its_job(
    aiohttp_client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fake convert cannot end before the gate file exists, so the request must give up
    waiting after ``sync_wait_s`` and answer 202 with the job to poll; the job goes on."""
    gate = tmp_path / "gate"
    monkeypatch.setenv("FAKE_CONVERT_GATE", str(gate))
    config = make_config(tmp_path / "var", sync_wait_s=0.2)
    client = await aiohttp_client(create_app(config))
    install_dataset(config, "ds", RENDERING)
    # The deadline only turns a request that ignores the sync wait into a failure.
    resp = await asyncio.wait_for(client.post("/training/datasets/ds/convert", data="{}"), 60)
    assert resp.status == 202, await resp.text()
    body = await resp.json()
    job_id = body["job_id"]
    assert job_id.startswith("convert_")
    assert body["success"] is True and body["status"] == "running"
    assert resp.headers["Location"] == f"/training/jobs/{job_id}/progress"
    assert (await wait_for_status(client, job_id, ("running",)))["status"] == "running"
    gate.touch()
    assert (await wait_for_status(client, job_id, ("completed",)))["status"] == "completed"
