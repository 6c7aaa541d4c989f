"""Request scratch folders: none for a request that is refused, none left by one that fails,
and the rest pruned past the retention limits."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from server.app import create_app
from server.scratch import KEEP_NEWEST, KEEP_SECONDS, ScratchDir, prune
from tests.conftest import DEEPCAD_SAMPLES
from tests.server.conftest import make_config

GOOD = "00000144.json"
EMPTY = "00000176.json"  # a real DeepCAD model with no geometry: the stage refuses it


def aged(root: Path, name: str, age_s: float, now: float) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    os.utime(folder, (now - age_s, now - age_s))
    return folder


def test_folders_past_the_newest_limit_or_a_day_old_are_pruned(tmp_path):
    now = time.time()
    for i in range(KEEP_NEWEST + 5):
        aged(tmp_path, f"render_views_{i:04d}", age_s=i, now=now)  # 0000 is the newest
    stale = aged(tmp_path, "pair_stale", age_s=KEEP_SECONDS + 60, now=now)
    batch = aged(tmp_path, "batch_old", age_s=10 * KEEP_SECONDS, now=now)  # a job's output
    removed = prune(tmp_path, keep="render_views_new", now=now)
    kept = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("render_views_"))
    assert kept == [f"render_views_{i:04d}" for i in range(KEEP_NEWEST - 1)]
    assert not stale.exists() and batch.exists()
    assert removed == 6 + 1


def test_a_failed_request_removes_its_folder(tmp_path):
    with pytest.raises(RuntimeError), ScratchDir(tmp_path, "pair") as work:
        (work.path / "record.json").write_text("{}")
        raise RuntimeError("the stage refused it")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
async def real(aiohttp_client, tmp_path):
    config = make_config(tmp_path / "var", stages_package="stages", workers=1)
    return await aiohttp_client(create_app(config)), config


def model(name: str) -> dict:
    return json.loads((DEEPCAD_SAMPLES / name).read_text())


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("/training/render-views", {"model": model(GOOD), "views": ["nowhere"]}),
        ("/training/render-views", {"model": model(EMPTY), "resolution": 64}),
        ("/training/generate-pair", {"model": model(GOOD), "view": "nowhere"}),
        ("/training/generate-pair", {"model": model(EMPTY), "resolution": 64}),
        ("/validation/training-pair", {"record": {"id": "x"}}),
        ("/validation/training-pair", {"record": {"id": "x"}, "dataset": "missing"}),
    ],
)
async def test_a_refused_request_leaves_no_scratch_folder(real, route, body):
    client, config = real
    resp = await client.post(route, data=json.dumps(body))
    assert resp.status in (200, 404, 422), await resp.text()
    left = list(config.renders_dir.iterdir()) if config.renders_dir.exists() else []
    assert left == []
