"""Hostile and broken input gets a 4xx problem naming what is wrong (or a 503 for storage),
never a 500, a traceback or a server path; links never lead out of the data root."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

import pytest

from server.app import create_app
from server.config import Config
from stages.dataset.layout import MANIFEST
from tests.server.conftest import make_config, submit_fake

EXTRACT = "/training/datasets/extract"


def make_dataset(config: Config, name: str) -> Path:
    """The smallest folder the registry lists: a manifest and an images folder."""
    folder = config.data_root / name
    (folder / "images").mkdir(parents=True)
    manifest = {"name": name, "stages": {"extraction": "completed"}, "counts": {"models": 1}}
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return folder


async def problem(resp, status: int, field: str | None = None) -> dict:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    if field is not None:
        assert body["field"] == field, body
    return body


def no_server_paths(text: str, config: Config) -> None:
    assert "Traceback" not in text and "line " not in text
    assert str(config.var_dir.resolve()) not in text and "/server/" not in text


async def raw_request(client, request: bytes) -> bytes:
    """Bytes on the wire, for requests no HTTP client library will send."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(request)
    await writer.drain()
    answer = await reader.read(65536)
    writer.close()
    return answer


# -- JSON that parsers choke on ----
async def test_an_integer_of_5000_digits_is_422_naming_its_field(client):
    body = '{"source": "synthetic", "train_size": ' + "9" * 5000 + ', "val_size": 1}'
    await problem(await client.post(EXTRACT, data=body), 422, "train_size")


async def test_arrays_nested_50000_deep_are_400(client):
    resp = await client.post(EXTRACT, data="[" * 50_000)
    assert (await problem(resp, 400))["detail"]


async def test_nan_is_refused(client):
    body = '{"source": "synthetic", "train_size": NaN, "val_size": 1, "output_name": "x"}'
    assert (await client.post(EXTRACT, data=body)).status in (400, 422)


# -- names no file system can hold ----
async def test_an_image_name_of_5000_characters_is_422(client, config):
    make_dataset(config, "ds")
    resp = await client.get("/training/datasets/ds/images/" + "a" * 4996 + ".png")
    await problem(resp, 422, "filename")


@pytest.mark.parametrize("base_model", ["tiny\x00model", "a" * 300])
async def test_bad_base_models_are_422_without_server_paths(client, config, base_model):
    make_dataset(config, "ds")
    resp = await client.post("/training/test-run", json={"dataset": "ds", "base_model": base_model})
    body = await problem(resp, 422, "base_model")
    no_server_paths(json.dumps(body), config)


async def test_a_body_field_is_named_as_the_caller_sent_it(client):
    resp = await client.post("/training/test-run", json={"dataset": "../up"})
    await problem(resp, 422, "dataset")
    resp = await client.post("/training/test-run", json={"dataset": "nothing_here"})
    await problem(resp, 404)


async def test_a_bad_view_of_a_pair_is_named_view(client):
    resp = await client.post(
        "/training/generate-pair", json={"dataset": "ds", "model_id": "m", "view": "nowhere"}
    )
    await problem(resp, 422, "view")


# -- headers ----
async def test_a_token_that_is_not_utf8_is_401(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(make_config(tmp_path / "var", api_token="s3cret")))
    answer = await raw_request(
        client,
        b"GET /training/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n"
        b"Connection: close\r\n\r\n",
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401") and b"application/problem+json" in head
    assert json.loads(body)["status"] == 401


@pytest.mark.parametrize("last_id", ["9223372036854775808", "-1", "9" * 5000, "x"])
async def test_an_event_id_out_of_range_is_422(client, last_id):
    job_id = await submit_fake(client, "--items", "1")
    resp = await client.get(f"/training/jobs/{job_id}/events", headers={"Last-Event-ID": last_id})
    await problem(resp, 422, "Last-Event-ID")


async def test_a_body_announced_too_large_is_413_before_it_is_sent(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(make_config(tmp_path / "var", max_body_bytes=1024)))
    answer = await raw_request(
        client,
        b"POST /training/datasets/extract HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100000000\r\n"
        b"Expect: 100-continue\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    assert b"100 Continue" not in answer and b"application/problem+json" in answer


async def test_a_body_within_the_limit_is_continued(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(make_config(tmp_path / "var")))
    answer = await raw_request(
        client,
        b"POST /training/datasets/extract HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        b"Expect: 100-continue\r\nConnection: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 100 Continue")


# -- what a start says ----
async def test_a_start_answers_started_with_the_queue_state_beside_it(client):
    body = {"source": "synthetic", "train_size": 2, "val_size": 1, "output_name": "s"}
    started = await (await client.post(EXTRACT, json=body)).json()
    assert started["status"] == "started"
    assert started["job_status"] in ("queued", "running")


# -- the data root's links and storage ----
async def test_a_linked_folder_in_the_data_root_is_skipped_with_a_warning(client, config):
    make_dataset(config, "real")
    elsewhere = make_dataset(config, "hidden").rename(config.var_dir / "elsewhere")
    (config.data_root / "linked").symlink_to(elsewhere)
    resp = await client.get("/training/datasets")
    assert resp.status == 200
    listing = await resp.json()
    assert [d["name"] for d in listing["datasets"]] == ["real"]
    assert listing["skipped"] == [
        {"name": "linked", "reason": "a symbolic link, not a dataset folder"}
    ]


async def test_a_dataset_with_a_broken_manifest_is_skipped_not_a_failed_listing(client, config):
    make_dataset(config, "good")
    (make_dataset(config, "bad") / MANIFEST).write_text("{not json")
    listing = await (await client.get("/training/datasets")).json()
    assert [d["name"] for d in listing["datasets"]] == ["good"]
    assert [s["name"] for s in listing["skipped"]] == ["bad"]
    await problem(await client.get("/training/datasets/bad/status"), 409)


@pytest.mark.parametrize("target", ["/etc/passwd", "../manifest.json"])
async def test_a_link_in_images_that_leads_out_is_not_served(client, config, target):
    images = make_dataset(config, "ds") / "images"
    (images / "m_front.png").symlink_to(target)
    await problem(await client.get("/training/datasets/ds/images/m_front.png"), 404)


async def test_a_linked_images_folder_is_not_served(client, config):
    folder = make_dataset(config, "ds")
    (folder / "images").rmdir()
    outside = config.var_dir / "outside"
    outside.mkdir()
    (outside / "m_front.png").write_bytes(b"\x89PNG not ours")
    (folder / "images").symlink_to(outside)
    await problem(await client.get("/training/datasets/ds/images/m_front.png"), 404)


@pytest.fixture
def read_only_root(tmp_path: Path):
    """A data root on a tmpfs that is then remounted read-only, as a full or failing disk
    that the kernel turned read-only is."""
    mount = tmp_path / "root"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


async def test_deleting_from_a_read_only_data_root_is_503_and_loses_nothing(
    aiohttp_client, tmp_path, read_only_root
):
    config = make_config(tmp_path / "var")
    config.data_root.parent.mkdir(parents=True)
    config.data_root.symlink_to(read_only_root)
    folder = make_dataset(config, "ds")
    (folder / "images" / "m_front.png").write_bytes(b"png")
    client = await aiohttp_client(create_app(config))
    subprocess.run(["mount", "-o", "remount,ro", str(read_only_root)], check=True)
    try:
        body = await problem(await client.delete("/training/datasets/ds"), 503)
        assert body["type"].endswith("storage-error")
        assert (folder / "images" / "m_front.png").read_bytes() == b"png"
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(read_only_root)], check=False)
    assert (await client.delete("/training/datasets/ds")).status == 200
    assert not os.path.exists(folder)
