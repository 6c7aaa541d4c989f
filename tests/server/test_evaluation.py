"""Evaluation over HTTP with the real evaluate stage: a training job's checkpoint scored on a
dataset's validation records as a job, its samples shown beside their reference views, two
checkpoints compared on the same records, a resumed evaluation that repeats no sample, and
each way a request can name nothing to evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from server.app import create_app
from server.appkeys import CONFIG, RUNNER
from stages.train.eval_samples import SampleLog, draw_generated, record_view, reference_views
from tests.conftest import OPENECAD_GOLDEN
from tests.server.conftest import make_config, wait_for_status
from tests.server.runs import DATASET, converted_dataset, run_dir, training_job, write_tiny_run

VIEWS = ("front", "top")


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
async def real(aiohttp_client, tmp_path: Path):
    config = make_config(tmp_path / "var", stages_package="stages", workers=1)
    return await aiohttp_client(create_app(config))


def with_views(dataset: Path) -> Path:
    """Validation records named as the render stage names images (``<model>_<view>.png``), with
    a second view of each model beside it: what a rendered, converted dataset holds."""
    records = json.loads((dataset / "val.json").read_text())
    images = dataset / "images"
    for index, record in enumerate(records):
        model = f"m{index}"
        old = images / record["image"]
        for view in VIEWS:
            (images / f"{model}_{view}.png").write_bytes(old.read_bytes())
        record["image"] = f"{model}_front.png"
        record["id"] = f"{model}_front"
    (dataset / "val.json").write_text(json.dumps(records))
    return dataset


async def trained(client) -> str:
    """A finished training job of the tiny model with two checkpoints (the first is best)."""
    dataset = with_views(converted_dataset(client.app[CONFIG]))
    job = await training_job(client)
    write_tiny_run(run_dir(client, job), dataset, [1.5, 2.0])
    return job.id


async def problem(resp, status: int, field: str | None = None) -> dict:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    if field is not None:
        assert body.get("field") == field, body
    return body


async def evaluate(client, **body) -> dict:
    request = {"dataset": DATASET, "max_new_tokens": 6, "device": "cpu", **body}
    resp = await client.post("/training/evaluate", json=request)
    assert resp.status == 202, await resp.text()
    started = await resp.json()
    assert started["status"] == "started"
    assert resp.headers["Location"] == f"/training/evaluations/{started['job_id']}"
    done = await wait_for_status(client, started["job_id"], ("completed", "failed"), 300)
    assert done["status"] == "completed", done
    return await (await client.get(f"/training/evaluations/{started['job_id']}")).json()


async def test_a_checkpoint_is_scored_and_each_sample_shown_beside_its_reference(real):
    job_id = await trained(real)
    best = await evaluate(real, checkpoint=job_id, samples=2)
    assert best["checkpoint"]["checkpoint"] == "step-00000002"  # lowest validation loss
    summary = best["summary"]
    assert summary["count"] == 2 and 0.0 <= summary["invalid_ratio"] <= 1.0
    assert summary["records_per_s"] > 0
    assert best["total_samples"] == 2 and len(best["samples"]) == 2
    for sample in best["samples"]:
        assert sample["model_id"] in ("m0", "m1") and isinstance(sample["generated"], str)
        assert set(sample["reference_images"]) == set(VIEWS)
        for url in sample["reference_images"].values():
            fetched = await real.get(url)
            assert fetched.status == 200 and fetched.content_type == "image/png"
        if sample["invalid"]:
            assert sample["generated_images"] == {} and sample["error"]

    final = await evaluate(real, checkpoint=job_id, checkpoint_name="final", samples=2)
    listing = await (await real.get(f"/training/evaluations?dataset={DATASET}")).json()
    assert [e["job_id"] for e in listing["evaluations"]] == [final["job_id"], best["job_id"]]
    assert {e["checkpoint"]["checkpoint"] for e in listing["evaluations"]} == {
        "final", "step-00000002"}  # fmt: skip
    ids = [[s["id"] for s in e["samples"]] for e in (best, final)]
    assert ids[0] == ids[1]  # the same records, so the two compare
    page = await (await real.get(f"/training/evaluations/{best['job_id']}?limit=1&offset=1")).json()
    assert [s["id"] for s in page["samples"]] == ids[0][1:]


async def test_a_resumed_evaluation_repeats_no_sample(real):
    """The stage writes each sample as it is scored: a resume scores only those missing."""
    job_id = await trained(real)
    first = await evaluate(real, checkpoint=job_id, samples=2, views=["front"])
    folder = real.app[CONFIG].evaluations_dir / first["job_id"]
    log = SampleLog(folder)
    kept = log.done_rows()[:1]
    log.start_fresh()
    log.append(kept)
    with open(log.path, "a") as f:
        f.write('{"id": "torn')  # the line a killed run was writing
    runner = real.app[RUNNER]
    await runner.store.update_job(first["job_id"], status="interrupted")
    resp = await real.post(f"/training/jobs/{first['job_id']}/resume")
    assert resp.status == 202, await resp.text()
    done = await wait_for_status(real, first["job_id"], ("completed", "failed"), 300)
    assert done["status"] == "completed"
    rows = log.done_rows()
    assert [r["id"] for r in rows] == [s["id"] for s in first["samples"]]
    assert rows[0] == kept[0]  # kept as it was, not scored again


async def test_requests_that_name_nothing_to_evaluate_are_refused(real):
    job_id = await trained(real)
    post = real.post
    await problem(await post("/training/evaluate", json={"dataset": DATASET}), 422, "checkpoint")
    await problem(
        await post("/training/evaluate", json={"dataset": "none", "checkpoint": job_id}), 404
    )
    unknown = {"dataset": DATASET, "checkpoint": "training_ffffffffff"}
    await problem(await post("/training/evaluate", json=unknown), 404)
    bad_name = {"dataset": DATASET, "checkpoint": job_id, "checkpoint_name": "latest"}
    await problem(await post("/training/evaluate", json=bad_name), 422, "checkpoint_name")
    bad_view = {"dataset": DATASET, "checkpoint": job_id, "views": ["sideways"]}
    await problem(await post("/training/evaluate", json=bad_view), 422, "views.0")
    not_a_model = {"dataset": DATASET, "checkpoint": "/definitely/not/here"}
    await problem(await post("/training/evaluate", json=not_a_model), 422, "checkpoint")
    await problem(await real.get("/training/evaluations/evaluation_0123456789"), 404)
    await problem(await real.get(f"/training/evaluations/{job_id}"), 404)  # not an evaluation


def test_a_generated_program_that_builds_is_drawn_in_its_references_views(tmp_path):
    from stages.render.renderer import OrthoRenderer

    code = (OPENECAD_GOLDEN / "00000007.py").read_text()
    with OrthoRenderer() as renderer:
        drawn = draw_generated(renderer, code, tmp_path, "m0_front", ["front", "top"], 64)
        assert draw_generated(renderer, "not code(", tmp_path, "x", ["front"], 64) == {}
    assert drawn == {"front": "m0_front_front.png", "top": "m0_front_top.png"}
    with Image.open(tmp_path / drawn["top"]) as image:
        assert image.size == (64, 64)


def test_records_name_their_model_and_view(tmp_path):
    for view in ("front", "iso"):
        (tmp_path / f"00000007_{view}.png").write_bytes(b"png")
    assert reference_views(tmp_path, Path("00000007_front.png")) == (
        "00000007", {"front": "00000007_front.png", "iso": "00000007_iso.png"})  # fmt: skip
    assert record_view(Path("a_b_composite.png")) == "composite"
    assert record_view(Path("000001.png")) is None
