"""The stage routes with the real stages, on a small dataset extracted from the real samples."""

from __future__ import annotations

import base64
import io
import json

import pytest
import torch
from PIL import Image

from server.app import create_app
from server.appkeys import CONFIG
from tests.conftest import DEEPCAD_SAMPLES
from tests.server.conftest import make_config, wait_for_status


@pytest.fixture
async def real(aiohttp_client, tmp_path):
    config = make_config(
        tmp_path / "var", stages_package="stages", deepcad_root=DEEPCAD_SAMPLES, workers=2
    )
    return await aiohttp_client(create_app(config))


async def extract(client, name: str = "ds", train: int = 4, val: int = 1) -> str:
    body = {"source": "deepcad", "train_size": train, "val_size": val, "output_name": name}
    resp = await client.post("/training/datasets/extract", data=json.dumps(body))
    assert resp.status == 202, await resp.text()
    started = await resp.json()
    assert resp.headers["Location"] == f"/training/jobs/{started['job_id']}/progress"
    done = await wait_for_status(client, started["job_id"], ("completed", "failed"), timeout=120)
    assert done["status"] == "completed", done
    return name


async def problem(resp, status: int, field: str | None = None) -> dict:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    if field is not None:
        assert body["field"] == field, body
    return body


@pytest.mark.slow
async def test_render_conversion_and_training_requests_are_checked(real):
    name = await extract(real)
    status = await (await real.get(f"/training/datasets/{name}/status")).json()
    assert status["status"] == "extracted"
    assert status["stages"] == {
        "extraction": "completed", "rendering": "pending", "conversion": "pending",
        "validation": "pending",
    }  # fmt: skip
    render = f"/training/datasets/{name}/render"
    await problem(await real.post(render, data='{"views": ["front", "side"]}'), 422, "views.1")
    await problem(await real.post(render, data='{"resolution": 32}'), 422, "resolution")
    await problem(await real.post(render, data='{"resolution": 4096}'), 422, "resolution")
    await problem(await real.post("/training/datasets/none/render", data="{}"), 404)
    await problem(await real.post(f"/training/datasets/{name}/convert", data="{}"), 409)
    await problem(await real.post(f"/training/datasets/{name}/validate"), 409)
    test_run = {"dataset": name, "train_samples": 4, "val_samples": 1, "epochs": 1}
    await problem(await real.post("/training/test-run", data=json.dumps(test_run)), 409)

    resp = await real.post(render, data='{"views": ["front", "top"], "resolution": 64}')
    assert resp.status == 202
    started = await resp.json()
    assert started["models_to_process"] == 5 and started["images_to_create"] == 10
    done = await wait_for_status(real, started["job_id"], ("completed", "failed"), timeout=120)
    assert done["status"] == "completed" and done["progress"]["images_rendered"] == 10
    folder = real.app[CONFIG].data_root / name
    first = json.loads((folder / "split.json").read_text())["train"][0]
    image = await real.get(f"/training/datasets/{name}/images/{first}_top.png")
    assert image.status == 200
    assert Image.open(io.BytesIO(await image.read())).size == (64, 64)
    await problem(await real.get(f"/training/datasets/{name}/images/{first}_iso.png"), 404)
    await problem(await real.get(f"/training/datasets/{name}/images/x.txt"), 422, "filename")

    resp = await real.post(f"/training/datasets/{name}/convert", data='{"seed": 3}')
    assert resp.status == 200
    converted = await resp.json()
    assert converted["status"] == "completed" and converted["output"]["train_conversations"] > 0

    accelerators = {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    absent = [device for device, present in accelerators.items() if not present]
    for change, field in [
        *(({"device": device}, "device") for device in absent),  # this host lacks them
        ({"base_model": "nobody/no-such-model"}, "base_model"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"train_samples": 10_000}, "train_samples"),
    ]:
        resp = await real.post("/training/test-run", data=json.dumps({**test_run, **change}))
        await problem(resp, 422, field)
    start = {"dataset": name, "config": {"use_lora": False}}
    await problem(
        await real.post("/training/start", data=json.dumps(start)), 422, "config.use_lora"
    )
    await problem(await real.get("/training/nope_123/status"), 404)


@pytest.mark.slow
async def test_single_model_renders_pairs_and_batches(real):
    good = json.loads((DEEPCAD_SAMPLES / "00000144.json").read_text())
    empty = json.loads((DEEPCAD_SAMPLES / "00000176.json").read_text())
    body = {"model": good, "views": ["top", "iso"], "resolution": 96}
    resp = await real.post("/training/render-views", data=json.dumps(body))
    assert resp.status == 200, await resp.text()
    rendered = await resp.json()
    assert [v["view"] for v in rendered["views"]] == ["top", "iso"]
    for view in rendered["views"]:
        png = Image.open(io.BytesIO(base64.b64decode(view["image_base64"])))
        assert png.size == (96, 96)
        fetched = await real.get(view["url"])
        assert fetched.status == 200 and fetched.content_type == "image/png"
    bad = await real.post("/training/render-views", data=json.dumps({"model": empty}))
    assert (await problem(bad, 422, "model"))["reason"] == "no_geometry"
    await problem(await real.post("/training/render-views", data="{}"), 422)

    resp = await real.post(
        "/training/generate-pair", data=json.dumps({"model": good, "resolution": 64})
    )
    assert resp.status == 200, await resp.text()
    pair = await resp.json()
    human, gpt = pair["record"]["conversations"]
    assert human["value"].startswith("<image>\n")
    assert gpt["value"].startswith("Of course, here are the codes:\n```python\nSketchPlane0")
    assert (await real.get(pair["image"]["url"])).status == 200

    check = {"record": pair["record"], "model": good}
    resp = await real.post("/validation/training-pair", data=json.dumps(check))
    assert resp.status == 200 and (await resp.json())["valid"] is True
    broken = json.loads(json.dumps(pair["record"]))
    broken["conversations"][0]["value"] = "no image token"
    resp = await real.post("/validation/training-pair", data=json.dumps({"record": broken}))
    assert resp.status == 200 and (await resp.json())["valid"] is False

    batch = {"models": [good, empty], "views": ["front"], "resolution": 64}
    resp = await real.post("/training/batch-render", data=json.dumps(batch))
    assert resp.status == 202
    started = await resp.json()
    done = await wait_for_status(real, started["job_id"], ("completed", "failed"), timeout=120)
    assert done["status"] == "completed"
    assert done["stats"]["succeeded"] == 1 and done["stats"]["failed"] == 1
    fetched = await real.get(started["images_url"] + "00000000_front.png")
    assert fetched.status == 200


async def test_dataset_lifecycle_listing_and_delete(real):
    name = await extract(real, "life", 3, 1)
    again = {"source": "deepcad", "train_size": 3, "val_size": 1, "output_name": name}
    await problem(await real.post("/training/datasets/extract", data=json.dumps(again)), 409)
    too_many = {**again, "output_name": "big", "train_size": 500}
    await problem(
        await real.post("/training/datasets/extract", data=json.dumps(too_many)), 422, "train_size"
    )
    listing = (await (await real.get("/training/datasets")).json())["datasets"]
    assert [(d["name"], d["models"], d["status"]) for d in listing] == [(name, 4, "extracted")]
    resp = await real.delete(f"/training/datasets/{name}")
    assert resp.status == 200
    assert (await (await real.get("/training/datasets")).json())["datasets"] == []
    await problem(await real.get(f"/training/datasets/{name}/status"), 404)
