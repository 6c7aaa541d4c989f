"""The dashboard's static files and the small API its pages use (records, thumbnails,
reports), against the app in process."""

from __future__ import annotations

import io
import json

from PIL import Image

from server.app import create_app
from stages.dataset.manifest import EXTRACTION
from tests.server.conftest import install_dataset, make_config


def seed(config, name: str = "gal") -> None:
    folder = install_dataset(config, name, EXTRACTION)
    (folder / "images").mkdir()
    Image.new("RGB", (300, 200), "white").save(folder / "images" / "00000001_front.png")
    (folder / "images" / "00000002_front.png").write_bytes(b"not a png")
    records = [
        {"id": f"r{i}", "image": "00000001_front.png", "conversations": []} for i in range(7)
    ]
    (folder / "train.json").write_text(json.dumps(records))
    (folder / "validation.json").write_text(json.dumps({"valid": True, "problems": []}))


async def test_static_files(client):
    index = await client.get("/")
    assert index.status == 200 and index.content_type == "text/html"
    assert index.headers["Cache-Control"] == "no-cache"
    again = await client.get("/", headers={"If-None-Match": index.headers["ETag"]})
    assert again.status == 304
    script = await client.get("/dashboard/app.js")
    assert script.content_type == "text/javascript"
    assert (await client.get("/dashboard/style.css")).content_type == "text/css"
    for bad in ("/dashboard/nope.js", "/dashboard/.hidden.js", "/dashboard/app.py"):
        missing = await client.get(bad)
        assert missing.status == 404 and missing.content_type == "application/problem+json"


async def test_static_files_need_no_token_but_the_api_does(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(make_config(tmp_path, api_token="s3cret")))
    page = await client.get("/")
    assert page.status == 200
    assert 'content="token"' in await page.text()  # the page asks for the token first
    assert (await client.get("/dashboard/api.js")).status == 200
    assert (await client.post("/dashboard/api.js")).status in (401, 405)
    assert (await client.get("/training/datasets/x/records")).status == 401


async def test_records_are_paged(client, config):
    seed(config)
    body = await (await client.get("/training/datasets/gal/records?offset=5&limit=5")).json()
    assert body["total"] == 7 and [r["id"] for r in body["records"]] == ["r5", "r6"]
    val = await (await client.get("/training/datasets/gal/records?split=val")).json()
    assert val["converted"] is False and val["records"] == []
    bad = await client.get("/training/datasets/gal/records?split=test")
    assert bad.status == 422 and (await bad.json())["field"] == "split"
    assert (await client.get("/training/datasets/none/records")).status == 404


async def test_thumbnails_are_small_and_cached(client, config):
    seed(config)
    resp = await client.get("/training/datasets/gal/thumbnails/00000001_front.png?size=96")
    assert resp.status == 200 and resp.content_type == "image/png"
    assert Image.open(io.BytesIO(await resp.read())).size == (96, 64)
    cached = config.var_dir / "cache" / "thumbnails" / "gal" / "96" / "00000001_front.png"
    assert cached.is_file()
    broken = await client.get("/training/datasets/gal/thumbnails/00000002_front.png")
    assert broken.status == 422 and (await broken.json())["field"] == "filename"
    assert (await client.get("/training/datasets/gal/thumbnails/00000009_front.png")).status == 404
    too_big = await client.get("/training/datasets/gal/thumbnails/00000001_front.png?size=4096")
    assert too_big.status == 422 and (await too_big.json())["field"] == "size"


async def test_report(client, config):
    seed(config)
    body = await (await client.get("/training/datasets/gal/report")).json()
    assert body["manifest"]["name"] == "gal" and body["validation"]["valid"] is True
    assert body["skipped"] is None
