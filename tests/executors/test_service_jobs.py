"""A render job with ``"executor": "ray"`` through the real service, on the session's cluster.

The service runs the real stages (``--stages-package stages``) with ``--ray-address`` set:
the request is probed, the job joins the cluster, and its images are byte for byte those of
the same job run on local processes.
"""

from __future__ import annotations

import json

from server.app import create_app
from tests.executors.conftest import copy_dataset, files_of
from tests.server.conftest import make_config, wait_for_status

RENDER = {"views": ["front", "top", "iso"], "resolution": 96, "composite": True, "workers": 2}
JOB_TIMEOUT_S = 300


async def test_a_ray_render_job_draws_the_images_a_local_job_draws(
    aiohttp_client, ray_cluster, synthetic_dataset, tmp_path
):
    config = make_config(tmp_path / "var", stages_package="stages", ray_address=ray_cluster)
    client = await aiohttp_client(create_app(config))
    results = {}
    for executor in ("local", "ray"):
        copy_dataset(synthetic_dataset, config.data_root / executor)
        body = {**RENDER, "executor": executor}
        resp = await client.post(f"/training/datasets/{executor}/render", data=json.dumps(body))
        assert resp.status == 202, await resp.text()
        job_id = (await resp.json())["job_id"]
        done = await wait_for_status(client, job_id, ("completed", "failed"), JOB_TIMEOUT_S)
        assert done["status"] == "completed", done
        results[executor] = done["result"]
    local, on_ray = (files_of(config.data_root / name / "images") for name in ("local", "ray"))
    assert len(local) == 20 * 4
    assert on_ray == local
    for executor, result in results.items():
        assert result["executor"] == executor and result["rendered"] == 20, result
