"""Requests that race for one dataset: exactly one wins, the others get 409 at once.

The racing requests are fired together (``asyncio.gather``) against the real server; the
render jobs run a fake stage that holds the dataset until it is cancelled.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from server.appkeys import CONFIG, STORE
from stages.dataset.manifest import STAGES
from tests.conftest import REPO_ROOT
from tests.server.conftest import install_dataset, wait_for_status


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> Path:
    """A real (synthetic) extracted dataset, made once and copied into each test."""
    out = tmp_path_factory.mktemp("extracted") / "shared"
    subprocess.run(
        [sys.executable, "-m", "stages.extract", "--source", "synthetic", "--train-size", "2",
         "--val-size", "1", "--output", str(out), "--name", "shared"],
        cwd=REPO_ROOT, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return out


def install(client, extracted: Path, name: str) -> Path:
    target = client.app[CONFIG].data_root / name
    shutil.copytree(extracted, target)
    return target


async def problem_or_body(resp) -> tuple[int, dict]:
    body = await resp.json(content_type=None)
    if resp.status >= 400:
        assert resp.content_type == "application/problem+json", body
    return resp.status, body


async def test_parallel_extracts_of_one_name_one_wins(client):
    body = json.dumps({"source": "synthetic", "train_size": 2, "val_size": 1, "output_name": "x"})
    replies = await asyncio.gather(
        *(client.post("/training/datasets/extract", data=body) for _ in range(3))
    )
    answers = [await problem_or_body(r) for r in replies]
    assert sorted(status for status, _ in answers) == [202, 409, 409], answers
    winner = next(b["job_id"] for s, b in answers if s == 202)
    assert await client.app[STORE].holder("x") == winner
    assert (await client.post(f"/training/jobs/{winner}/cancel")).status == 202
    await wait_for_status(client, winner, ("cancelled",))
    assert await client.app[STORE].holder("x") is None


async def test_delete_and_render_together_never_both_succeed(client, extracted):
    for attempt in range(4):  # each order of arrival gives one winner
        name = f"race{attempt}"
        install(client, extracted, name)
        render, delete = await asyncio.gather(
            client.post(f"/training/datasets/{name}/render", data="{}"),
            client.delete(f"/training/datasets/{name}"),
        )
        render_status, render_body = await problem_or_body(render)
        delete_status, _ = await problem_or_body(delete)
        if delete_status == 200:
            assert render_status in (404, 409), render_body
            assert not (client.app[CONFIG].data_root / name).exists()
        else:
            assert (delete_status, render_status) == (409, 202), render_body
            job_id = render_body["job_id"]
            assert await client.app[STORE].holder(name) == job_id
            await client.post(f"/training/jobs/{job_id}/cancel")
            await wait_for_status(client, job_id, ("cancelled",))
            assert (await client.delete(f"/training/datasets/{name}")).status == 200


async def test_resuming_an_old_render_while_a_newer_one_runs_is_refused(client, extracted):
    install(client, extracted, "ds")
    old = (await (await client.post("/training/datasets/ds/render", data="{}")).json())["job_id"]
    await client.post(f"/training/jobs/{old}/cancel")
    await wait_for_status(client, old, ("cancelled",))
    resp = await client.post("/training/datasets/ds/render", data="{}")
    assert resp.status == 202, await resp.text()
    newer = (await resp.json())["job_id"]

    resumed = await client.post(f"/training/jobs/{old}/resume")
    status, body = await problem_or_body(resumed)
    assert status == 409, body
    assert newer in body["detail"]
    assert (await client.get(f"/training/jobs/{old}/progress")).status == 200
    assert (await (await client.get(f"/training/jobs/{old}/progress")).json())["status"] == (
        "cancelled"
    )
    assert await client.app[STORE].holder("ds") == newer

    await client.post(f"/training/jobs/{newer}/cancel")
    await wait_for_status(client, newer, ("cancelled",))
    resp = await client.post(f"/training/jobs/{old}/resume")
    assert resp.status == 202, await resp.text()
    assert await client.app[STORE].holder("ds") == old
    await client.post(f"/training/jobs/{old}/cancel")
    await wait_for_status(client, old, ("cancelled",))


async def test_a_dataset_in_use_refuses_other_stages_and_deletion(client, extracted):
    install(client, extracted, "busy")
    job_id = (await (await client.post("/training/datasets/busy/render", data="{}")).json())[
        "job_id"
    ]
    for method, path in (
        ("POST", "/training/datasets/busy/render"),
        ("POST", "/training/datasets/busy/convert"),
        ("DELETE", "/training/datasets/busy"),
    ):
        resp = await client.request(method, path, data="{}")
        status, body = await problem_or_body(resp)
        assert status == 409, (path, body)
    await client.post(f"/training/jobs/{job_id}/cancel")
    await wait_for_status(client, job_id, ("cancelled",))


async def test_a_second_job_on_a_dataset_a_running_job_holds_is_409_naming_it(client):
    """Every stage is done, so only the hold can refuse: each job-starting route (and a
    delete) answers 409 dataset-in-use with the holding job, until that job ends."""
    install_dataset(client.app[CONFIG], "held", *STAGES)
    resp = await client.post("/training/datasets/held/render", data="{}")
    assert resp.status == 202, await resp.text()
    holder = (await resp.json())["job_id"]
    await wait_for_status(client, holder, ("running",))
    for method, path, body in (
        ("POST", "/training/datasets/held/render", {}),
        ("POST", "/training/datasets/held/convert", {}),
        ("POST", "/training/datasets/held/validate", {}),
        ("POST", "/training/test-run", {"dataset": "held"}),
        ("POST", "/training/start", {"dataset": "held"}),
        ("DELETE", "/training/datasets/held", None),
    ):
        resp = await client.request(method, path, data=None if body is None else json.dumps(body))
        status, problem = await problem_or_body(resp)
        assert status == 409, (path, problem)
        assert problem["type"].endswith("/dataset-in-use") and problem["job_id"] == holder, path
    jobs = (await (await client.get("/training/jobs?dataset=held")).json())["jobs"]
    assert [j["job_id"] for j in jobs] == [holder]  # the refused requests left no job behind
    await client.post(f"/training/jobs/{holder}/cancel")
    await wait_for_status(client, holder, ("cancelled",))
    resp = await client.post("/training/datasets/held/convert", data="{}")
    assert resp.status == 200 and (await resp.json())["status"] == "completed"


async def test_a_claim_the_previous_server_left_is_dropped_at_start(aiohttp_client, tmp_path):
    from server.app import create_app
    from tests.server.conftest import make_config

    config = make_config(tmp_path / "var")
    first = await aiohttp_client(create_app(config))
    await first.app[STORE].claim("left", "delete:abcdef")  # a deletion the server died in
    await first.close()
    second = await aiohttp_client(create_app(config))
    assert await second.app[STORE].holder("left") is None
