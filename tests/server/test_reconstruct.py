"""``POST /inference/reconstruct`` with the real pieces: a tiny model trained for real, the
real inference worker kept warm between requests, the real interpreter, builder, renderer and
mesh export; and every way an upload can be wrong answered with a problem naming the field.

A briefly trained model writes poor code, so the tests hold the answer to what the
interpreter says of that code, checked here independently; the build, views and meshes of
code that does build are tested on a real OpenECAD program through the worker's own
``rebuild``.
"""

from __future__ import annotations

import asyncio
import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import trimesh
from PIL import Image

from server.app import create_app
from server.appkeys import CONFIG
from server.config import parse_args
from server.http.openapi import openapi_document
from server.inference import INFERENCE
from server.jobs.process import group_processes
from server.jobs.store import Job, JobStore
from server.scratch import ScratchDir
from stages.cad.model import CadError
from stages.cad.openecad import parse_code, unwrap_answer
from stages.cad.solid import build_solid
from stages.train.rebuild import MM_PER_M, rebuild
from stages.train.synthetic import ANSWER_PREFIX, write_synthetic_dataset
from tests.conftest import OPENECAD_GOLDEN, REPO_ROOT
from tests.fake_stages.train.infer_worker import HELD_FILE, HOLD_TOKENS
from tests.server.conftest import make_config, pid_alive

JOB_ID = "training_test_00000000aa"
ROUTE = "/inference/reconstruct"
GOLDEN = OPENECAD_GOLDEN / "00000007.py"
TOKENS = 12  # enough to see code start; short enough to generate in a second


def png(size: tuple[int, int] = (48, 48), mode: str = "RGB") -> bytes:
    image = Image.new(mode, size, "white")
    image.paste("black", (8, 8, size[0] // 2, size[1] // 2))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def declared_png(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` pixels, with almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))  # fmt: skip


def form(image: bytes | None, **fields: str) -> aiohttp.FormData:
    data = aiohttp.FormData(default_to_multipart=True)
    if image is not None:
        data.add_field("image", image, filename="view.png", content_type="image/png")
    for name, value in fields.items():
        data.add_field(name, value)
    return data


async def problem(resp: aiohttp.ClientResponse, status: int, field: str | None) -> dict:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    assert body["status"] == status and body.get("field") == field, body
    return body


def interpreted(answer: str) -> tuple[bool, bool]:
    """Whether the code in ``answer`` parses and builds, asked of the interpreter directly."""
    try:
        model = parse_code(unwrap_answer(answer))
    except CadError:
        return False, False
    try:
        build_solid(model)
    except CadError:
        return True, False
    return True, True


def check_answer(body: dict, *, views: list[str]) -> None:
    assert body["success"] is True and body["reconstruction_id"].startswith("inference_")
    assert body["code"] == unwrap_answer(body["answer"])
    assert 0 < body["new_tokens"] <= TOKENS and isinstance(body["stopped"], bool)
    assert (body["parses"], body["builds"]) == interpreted(body["answer"])
    if body["builds"]:
        assert body["solid"]["volume_mm3"] > 0 and body["mesh"] is not None
        assert [v["view"] for v in body["views"]] == views
    else:
        assert body["error"]["stage"] == ("build" if body["parses"] else "parse")
        assert body["solid"] is None and body["views"] == [] and body["mesh"] is None
    timings = body["timings"]
    for key in ("load_s", "generate_s", "build_s", "render_s", "worker_start_s", "total_s"):
        assert timings[key] >= 0, key
    assert body["device"] == "cpu" and body["checkpoint"]["job_id"] == JOB_ID


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A var folder holding one finished test-run of the tiny model (one epoch on four
    records of real OpenECAD answers), known to the job store as ``JOB_ID``."""
    root = tmp_path_factory.mktemp("reconstruct")
    answers = [f"{ANSWER_PREFIX}{GOLDEN.read_text()}```"]
    dataset = write_synthetic_dataset(root / "dataset", 4, 1, image_size=32, answers=answers)
    var = root / "var"
    run = var / "checkpoints" / "ds" / JOB_ID
    subprocess.run(
        [sys.executable, "-m", "stages.train", "--dataset", str(dataset), "--output", str(run),
         "--epochs", "1", "--batch-size", "2", "--image-size", "32", "--max-length", "1024",
         "--device", "cpu", "--compile", "off", "--progress", "none"],
        cwd=REPO_ROOT, check=True, capture_output=True, timeout=600,
    )  # fmt: skip

    async def record() -> None:
        store = await JobStore.open(var / "jobs.sqlite3")
        job = Job(JOB_ID, "training_test", "completed", "ds", "gpu", ["train"], {}, created_at=1)
        await store.create_job(job)
        await store.close()

    asyncio.run(record())
    return var


@pytest.fixture
async def fast(aiohttp_client, tmp_path):
    config = make_config(tmp_path / "var", max_body_bytes=1024 * 1024)
    return await aiohttp_client(create_app(config))


# --- fast: what needs no model -----------------------------------------------------------------


def test_the_flags_and_their_environment_variables(monkeypatch) -> None:
    defaults = parse_args([])
    assert (defaults.inference_models, defaults.inference_timeout_s) == (2, 120.0)
    monkeypatch.setenv("CADVLM_INFERENCE_MODELS", "3")
    monkeypatch.setenv("CADVLM_INFERENCE_TIMEOUT_S", "9.5")
    assert (parse_args([]).inference_models, parse_args([]).inference_timeout_s) == (3, 9.5)
    assert parse_args(["--inference-models", "1"]).inference_models == 1
    with pytest.raises(SystemExit):
        parse_args(["--inference-timeout", "0"])


async def test_bad_uploads_are_problems_naming_the_field(fast) -> None:
    spec = {"checkpoint": "no/such-model"}  # a base model: only the worker would look it up
    await problem(await fast.post(ROUTE, data=form(None, **spec)), 422, "image")
    await problem(await fast.post(ROUTE, params=spec), 422, "image")  # an empty raw body
    await problem(await fast.post(ROUTE, data=spec), 422, "image")  # a urlencoded form
    await problem(await fast.post(ROUTE, data=form(png())), 422, "checkpoint")
    text = await fast.post(ROUTE, data=form(b"a picture of a bracket", **spec))
    assert "not a PNG or JPEG" in (await problem(text, 422, "image"))["detail"]
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, "GIF")
    await problem(await fast.post(ROUTE, data=gif.getvalue(), params=spec), 422, "image")
    whole = png((64, 64))
    cut = await fast.post(ROUTE, data=whole[: len(whole) // 2], params=spec,
                          headers={"Content-Type": "image/png"})  # fmt: skip
    assert "truncated or corrupt" in (await problem(cut, 422, "image"))["detail"]
    flipped = bytearray(whole)
    flipped[len(whole) // 2] ^= 0xFF  # inside the pixel data: only the CRC notices
    await problem(await fast.post(ROUTE, data=bytes(flipped), params=spec), 422, "image")
    for width, height in ((5000, 10), (4000, 4001), (100_000, 100_000)):
        huge = await fast.post(ROUTE, data=form(declared_png(width, height), **spec))
        assert "too many pixels" in (await problem(huge, 413, "image"))["detail"]
    over = b"\x89PNG" + b"\x00" * fast.app[CONFIG].max_body_bytes
    await problem(await fast.post(ROUTE, data=form(over, **spec)), 413, "image")
    await problem(await fast.post(ROUTE, data=over, params=spec), 413, "image")


async def test_bad_parameters_and_checkpoints_are_problems_naming_the_field(fast) -> None:
    image = png()
    for fields, status, field in [
        ({"checkpoint": "training_test_ffffffffff"}, 404, "checkpoint"),
        ({"checkpoint": "training_test_ffffffffff", "checkpoint_name": "latest"}, 404,
         "checkpoint"),
        ({"checkpoint": "tiny"}, 422, "checkpoint"),
        ({"checkpoint": "a/b", "checkpoint_name": "best"}, 422, "checkpoint_name"),
        ({"checkpoint": "a/b", "views": "front,side"}, 422, "views.1"),
        ({"checkpoint": "a/b", "views": "front,front"}, 422, "views"),
        ({"checkpoint": "a/b", "resolution": "32"}, 422, "resolution"),
        ({"checkpoint": "a/b", "max_new_tokens": "0"}, 422, "max_new_tokens"),
        ({"checkpoint": "a/b", "max_new_tokens": "many"}, 422, "max_new_tokens"),
        ({"checkpoint": "a/b", "colour": "red"}, 422, "colour"),
        ({"checkpoint": "a\x00b"}, 422, "checkpoint"),
    ]:  # fmt: skip
        await problem(await fast.post(ROUTE, data=form(image, **fields)), status, field)
        raw = {k: v for k, v in fields.items() if "\x00" not in v}
        if raw == fields:  # the same parameters in the query string beside a raw body
            await problem(await fast.post(ROUTE, data=image, params=raw), status, field)
    both = await fast.post(f"{ROUTE}?checkpoint=a/b", data=form(image, checkpoint="a/b"))
    await problem(both, 422, "checkpoint")
    assert not list((fast.app[CONFIG].inference_dir).glob("inference_*"))  # nothing kept
    assert fast.app[INFERENCE].pid is None  # and no worker started for any of it


async def test_the_openapi_document_describes_both_ways_to_upload(fast) -> None:
    document = openapi_document(fast.app, "cadvlm", "0")
    post = document["paths"][ROUTE]["post"]
    content = post["requestBody"]["content"]
    assert set(content) == {"multipart/form-data", "image/png", "image/jpeg"}
    assert content["multipart/form-data"]["schema"]["required"] == ["image", "checkpoint"]
    assert content["image/png"]["schema"]["format"] == "binary"
    assert {p["name"] for p in post["parameters"]} >= {"checkpoint", "views", "resolution"}
    assert {"413", "422", "404", "504"} <= set(post["responses"])
    files = document["paths"]["/inference/reconstructions/{reconstruction_id}/{file}"]["get"]
    assert set(files["responses"]["200"]["content"]) == {
        "image/png", "model/stl", "model/gltf-binary"}  # fmt: skip


async def test_a_program_that_builds_gives_its_solid_views_and_meshes(fast, tmp_path) -> None:
    """The build, draw and mesh step of every reconstruction, on a real OpenECAD program, and
    its files served by the download route."""
    from stages.render.renderer import OrthoRenderer

    code = GOLDEN.read_text()
    config = fast.app[CONFIG]
    with ScratchDir(config.inference_dir, "inference") as work, OrthoRenderer() as renderer:
        result = rebuild(f"{ANSWER_PREFIX}{code}```", work.path, ["front", "iso"], 128,
                         lambda: renderer)  # fmt: skip
    assert result["code"] == code and result["parses"] and result["builds"]
    assert result["error"] is None
    solid = build_solid(parse_code(code))
    facts = result["solid"]
    assert facts["volume_mm3"] == pytest.approx(solid.volume * MM_PER_M**3)
    assert np.allclose([facts["bbox_mm"]["min"], facts["bbox_mm"]["max"]], solid.bbox * MM_PER_M)
    assert facts["watertight"] and facts["triangles"] == len(solid.faces)
    assert result["images"] == {"front": "reconstruction_front.png",
                                "iso": "reconstruction_iso.png"}  # fmt: skip
    base = f"/inference/reconstructions/{work.id}/"
    for name in result["images"].values():
        resp = await fast.get(base + name)
        assert resp.status == 200 and resp.content_type == "image/png"
        assert Image.open(io.BytesIO(await resp.read())).size == (128, 128)
    for kind, content_type in (("stl", "model/stl"), ("glb", "model/gltf-binary")):
        resp = await fast.get(base + result["meshes"][kind])
        assert resp.status == 200 and resp.content_type == content_type
        assert "attachment" in resp.headers["Content-Disposition"]
        mesh = trimesh.load(io.BytesIO(await resp.read()), file_type=kind, force="mesh")
        assert mesh.volume == pytest.approx(facts["volume_mm3"], rel=1e-6)

    outside = tmp_path / "secret.png"
    outside.write_bytes(png())
    (work.path / "link.png").symlink_to(outside)
    for path in (base + "link.png", base + "../x.png", base + "notes.txt",
                 "/inference/reconstructions/inference_0000000000/input.png",
                 "/inference/reconstructions/renders/input.png"):  # fmt: skip
        assert (await fast.get(path)).status == 404, path


def test_code_that_does_not_parse_or_build_says_where_it_stopped(tmp_path) -> None:
    def never() -> None:
        raise AssertionError("nothing is drawn for code that does not build")

    broken = rebuild("SketchPlane0 = add_sketchplane(", tmp_path, ["front"], 64, never)
    assert (broken["parses"], broken["builds"], broken["error"]["stage"]) == (False, False, "parse")
    empty = rebuild("", tmp_path, ["front"], 64, never)
    assert (empty["parses"], empty["builds"]) == (True, False)
    assert empty["error"] == {"stage": "build", "reason": "no_geometry",
                              "detail": "model has no extrude with a profile"}  # fmt: skip
    assert not list(tmp_path.iterdir())


# --- slow: the real model --------------------------------------------------------------------


@pytest.mark.slow
async def test_uploads_are_reconstructed_by_a_model_kept_warm(aiohttp_client, trained) -> None:
    client = await aiohttp_client(create_app(make_config(trained, inference_models=1)))
    views = ["front", "iso"]
    image = png((96, 64), "RGBA")  # resized by the model's processor; alpha over white
    resp = await client.post(
        ROUTE, data=form(image, checkpoint=JOB_ID, max_new_tokens=str(TOKENS),
                         views=",".join(views), resolution="96"),
    )  # fmt: skip
    assert resp.status == 200, await resp.text()
    first = await resp.json()
    check_answer(first, views=views)
    assert first["model_already_loaded"] is False and first["timings"]["worker_start_s"] > 0
    assert first["checkpoint"]["checkpoint"].startswith("step-")  # best by default
    pid = client.app[INFERENCE].pid
    assert pid is not None and pid_alive(pid)
    saved = await client.get(first["input_image"]["url"])
    assert saved.status == 200 and (first["input_image"]["width"], first["input_image"]["height"]) \
        == (96, 64) and Image.open(io.BytesIO(await saved.read())).mode == "RGB"  # fmt: skip

    params = {"checkpoint": JOB_ID, "max_new_tokens": str(TOKENS), "views": "front,iso",
              "resolution": "96"}  # fmt: skip
    resp = await client.post(ROUTE, data=image, params=params,
                             headers={"Content-Type": "image/png"})  # fmt: skip
    assert resp.status == 200, await resp.text()
    second = await resp.json()
    check_answer(second, views=views)
    assert second["model_already_loaded"] is True and second["timings"]["worker_start_s"] == 0
    assert second["answer"] == first["answer"]  # greedy decoding of the same image
    assert client.app[INFERENCE].pid == pid  # the same worker
    assert second["reconstruction_id"] != first["reconstruction_id"]

    # One model kept (``--inference-models 1``): the final adapter replaces the best one,
    # named as a folder or as the job's "final" it is the same model, and the best is
    # loaded again once it was dropped.
    folder = f"checkpoints/ds/{JOB_ID}/adapter"
    for spec, name, warm in [(folder, None, False), (JOB_ID, "final", True),
                             (JOB_ID, None, False)]:  # fmt: skip
        fields = {"checkpoint": spec, "max_new_tokens": "4", "views": "front"}
        if name:
            fields["checkpoint_name"] = name
        resp = await client.post(ROUTE, data=form(image, **fields))
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert body["model_already_loaded"] is warm, (spec, name)
    assert body["checkpoint"]["checkpoint"] == first["checkpoint"]["checkpoint"]
    unknown = await client.post(ROUTE, data=form(image, checkpoint="no/such-model"))
    detail = (await problem(unknown, 422, "checkpoint"))["detail"]
    assert "/" + str(trained).strip("/") not in detail  # no server path in an answer
    assert client.app[INFERENCE].pid == pid  # a refused request leaves the worker serving

    await client.close()
    assert not pid_alive(pid) and not group_processes(pid)


@pytest.mark.slow
async def test_a_reconstruction_past_its_time_is_a_504_and_the_next_one_works(
    aiohttp_client, trained, tmp_path, monkeypatch
) -> None:
    held = tmp_path / "held"
    monkeypatch.setenv(HOLD_TOKENS, "7")
    monkeypatch.setenv(HELD_FILE, str(held))
    config = make_config(trained, inference_timeout_s=1.0)
    client = await aiohttp_client(create_app(config))
    kept = set(config.inference_dir.glob("inference_*"))  # other tests' reconstructions
    image = png()
    resp = await client.post(ROUTE, data=form(image, checkpoint=JOB_ID, max_new_tokens="7"))
    body = await problem(resp, 504, None)
    assert "did not finish within 1 s" in body["detail"]
    pid = int(held.read_text())  # the worker really was inside the request
    assert not pid_alive(pid) and not group_processes(pid)
    assert client.app[INFERENCE].pid is None
    assert set(config.inference_dir.glob("inference_*")) == kept  # its folder is removed

    client.app[INFERENCE].timeout_s = 600.0  # room for a fresh worker to load the model
    resp = await client.post(ROUTE, data=form(image, checkpoint=JOB_ID, max_new_tokens="5"))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["model_already_loaded"] is False and body["timings"]["worker_start_s"] > 0
    fresh = client.app[INFERENCE].pid
    assert fresh is not None and fresh != pid
    os.kill(fresh, 9)  # a worker that dies between requests is replaced on the next one
    resp = await client.post(ROUTE, data=form(image, checkpoint=JOB_ID, max_new_tokens="5"))
    assert resp.status == 200, await resp.text()
    assert client.app[INFERENCE].pid not in (None, fresh)
