"""A cluster one of whose nodes cannot see the dataset folder is refused before any job starts.

The cluster is real and has two nodes on this machine: a head ("seeing") and a second node
("blind") that runs in a mount namespace of its own, where a tmpfs hides the folder the
datasets live in, as a node without the shared storage would not see it. The probe runs a
task on every node, so the one that cannot see the folder is named, at the stage (exit 2)
and through the service (a 422 naming ``executor``, no job, no claim).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.app import create_app
from server.appkeys import STORE
from stages.dataset.manifest import EXTRACTION
from tests.conftest import REPO_ROOT
from tests.executors.clusters import RayCluster
from tests.executors.conftest import stage_env
from tests.server.conftest import install_dataset, make_config


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder the blind node cannot see (the service's var/ goes in it)."""
    return tmp_path_factory.mktemp("shared")


@pytest.fixture(scope="module")
def half_blind_cluster(shared: Path) -> Iterator[str]:
    """The address of a 2-node cluster whose second node does not see ``shared``."""
    pytest.importorskip("ray")
    cluster = RayCluster(["--num-cpus", "1", "--node-name", "seeing"])
    try:
        cluster.wait_until_up()
        cluster.add_node(["--num-cpus", "1", "--node-name", "blind"], hidden=shared)
        cluster.wait_until_up()
        yield cluster.address
    finally:
        left = cluster.close()
    assert left == [], f"Ray processes outlived the cluster: {left}"


def probe(address: str, folder: Path) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "stages.executors.probe", "--ray-address", address,
         "--path", str(folder)],
        capture_output=True, text=True, cwd=REPO_ROOT, env=stage_env(), timeout=180,
    )  # fmt: skip
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])


def test_the_probe_names_the_node_that_cannot_see_the_folder(half_blind_cluster, shared):
    folder = shared / "data"
    folder.mkdir()
    code, answer = probe(half_blind_cluster, folder)
    assert code == 2, answer
    assert answer["field"] == "executor" and answer["error"] == "ray_unusable"
    detail = answer["detail"]
    assert "1 of 2 nodes" in detail and "blind (node " in detail, detail
    assert "seeing" not in detail, detail
    assert list(folder.iterdir()) == [], "the probe's marker file is removed"


def test_a_folder_every_node_sees_passes_the_probe_on_both(half_blind_cluster, tmp_path):
    code, answer = probe(half_blind_cluster, tmp_path)
    assert (code, answer) == (0, {"ok": True, "nodes": 2})
    assert list(tmp_path.iterdir()) == []


async def test_the_service_refuses_the_cluster_with_a_422_naming_executor(
    aiohttp_client, half_blind_cluster, shared
):
    config = make_config(shared / "var", stages_package="stages", ray_address=half_blind_cluster)
    client = await aiohttp_client(create_app(config))
    install_dataset(config, "ds", EXTRACTION)
    requests = [
        ("/training/datasets/ds/render", {"views": ["front"], "resolution": 64}),
        ("/training/datasets/extract", {"train_size": 2, "val_size": 1, "output_name": "new"}),
    ]
    for path, body in requests:
        resp = await client.post(path, data=json.dumps({**body, "executor": "ray"}))
        assert resp.status == 422, await resp.text()
        assert resp.content_type == "application/problem+json"
        problem = await resp.json()
        assert problem["field"] == "executor"
        assert "blind (node " in problem["detail"] and "seeing" not in problem["detail"]
    jobs = await (await client.get("/training/jobs")).json()
    assert jobs["jobs"] == [], "no job was started"
    assert await client.app[STORE].holder("ds") is None, "the dataset was not kept claimed"
    assert sorted(p.name for p in config.data_root.iterdir()) == ["ds"]
    assert [p.name for p in (config.data_root / "ds").iterdir()] == ["dataset.json"]
