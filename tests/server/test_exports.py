"""Checkpoints and export over HTTP: a training job's checkpoints listed, one merged into its
base model by the real export stage, the result loaded with the project's loader (its logits
equal the base model with the adapter on top) and downloaded as a tar.

Runs come two ways: written here (a tiny base, adapters with random LoRA weights and the
trainer state the training stage writes: the fast path, and the TinyLLaVA base) and one real
short test-run through ``POST /training/test-run`` (slow).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from server.app import create_app
from server.appkeys import CONFIG
from stages.train.data import (
    Collator,
    VlmDataset,
    encode_records,
    iter_records,
    read_split,
    record_texts,
)
from stages.train.lora import load_adapter
from stages.train.models import load_base_model, resolve_base_model
from tests.server.conftest import install_dataset, make_config, submit_fake, wait_for_status
from tests.server.runs import (
    DATASET,
    converted_dataset,
    run_dir,
    training_job,
    write_run,
    write_tiny_run,
)

TINYLLAVA_FILES = {
    "config.json", "generation_config.json", "model.safetensors", "special_tokens_map.json",
    "tokenizer.model", "tokenizer_config.json",
}  # fmt: skip


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
async def real(aiohttp_client, tmp_path: Path):
    """A server running the real stages."""
    config = make_config(tmp_path / "var", stages_package="stages", workers=1)
    return await aiohttp_client(create_app(config))


# --- the model side ----------------------------------------------------------------------------
def one_batch(bundle, dataset: Path) -> dict[str, Any]:
    """The first validation record, encoded as training encodes it."""

    def encode(human: str, answer: str):
        return bundle.prompt.encode(
            bundle.tokenizer, human, answer, bundle.image_token_id, bundle.num_image_tokens
        )

    records = iter_records(read_split(dataset, "val"), dataset / "images", lambda *a: None)
    examples = encode_records(records, encode, bundle.max_positions, 1, lambda *a: None)
    return Collator(bundle.tokenizer.pad_token_id)([VlmDataset(examples, bundle.pixel_values)[0]])


@torch.no_grad()
def logits(model, batch: dict[str, Any]) -> torch.Tensor:
    model.eval()
    return model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        pixel_values=batch["pixel_values"],
    ).logits


def assert_merged(exported: Path, base: str, adapter: Path, dataset: Path) -> None:
    """The exported folder loads with the project's loader; its logits are the base model's
    with the adapter on top (peft), and not the base model's alone."""
    bundle = load_base_model(resolve_base_model(base))
    batch = one_batch(bundle, dataset)
    plain = logits(bundle.model, batch)
    adapted = logits(load_adapter(bundle, adapter), batch)
    merged_bundle = load_base_model(resolve_base_model(str(exported)))
    merged = logits(merged_bundle.model, one_batch(merged_bundle, dataset))
    assert not torch.allclose(plain, adapted, atol=1e-3)  # the adapter changes the model
    assert torch.allclose(merged, adapted, atol=1e-4, rtol=1e-4), (merged - adapted).abs().max()


# --- the HTTP side -----------------------------------------------------------------------------
async def problem(resp, status: int, field: str | None = None) -> dict:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    if field is not None:
        assert body.get("field") == field, body
    return body


async def start_export(client, job_id: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body)
    resp = await client.post(f"/training/{job_id}/export", data=data)
    assert resp.status == 202, await resp.text()
    started = await resp.json()
    assert started["job_id"].startswith("export_") and started["status"] == "started"
    assert resp.headers["Location"] == f"/training/exports/{started['job_id']}"
    return started


async def finished_export(client, export_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        view = await (await client.get(f"/training/exports/{export_id}")).json()
        if view["status"] not in ("queued", "running"):
            assert view["status"] == "completed", view
            return view
        assert time.monotonic() < deadline, view
        await asyncio.sleep(0.2)


async def download(client, view: dict, tmp_path: Path) -> Path:
    """The archive, checked against the result, unpacked into a new folder: its ``model/``."""
    resp = await client.get(view["download_url"])
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "application/x-tar"
    training, checkpoint = view["training_job"], view["checkpoint"]["checkpoint"]
    assert resp.headers["Content-Disposition"] == (
        f'attachment; filename="{training}-{checkpoint}.tar"'
    )
    data = await resp.read()
    archive = view["result"]["archive"]
    assert len(data) == archive["size_bytes"]
    assert hashlib.sha256(data).hexdigest() == archive["sha256"]
    target = tmp_path / view["job_id"]
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(target, filter="data")
    return target / "model"


def assert_same_files(unpacked: Path, exported: Path, listed: list[dict[str, Any]]) -> None:
    names = sorted(p.name for p in exported.iterdir())
    assert sorted(p.name for p in unpacked.iterdir()) == names
    assert [f["name"] for f in listed] == names
    for entry in listed:
        assert (exported / entry["name"]).stat().st_size == entry["size_bytes"] > 0
        assert (unpacked / entry["name"]).read_bytes() == (exported / entry["name"]).read_bytes()


# --- tests -------------------------------------------------------------------------------------
async def test_a_checkpoint_exports_loads_and_downloads(real, tmp_path: Path) -> None:
    """The fast path end to end: list, export the best checkpoint, load it, download it."""
    config = real.app[CONFIG]
    dataset = converted_dataset(config)
    job = await training_job(real)
    root = run_dir(real, job)
    await asyncio.to_thread(write_tiny_run, root, dataset, [1.5, 2.0])

    listing = await (await real.get(f"/training/{job.id}/checkpoints")).json()
    assert listing["job_id"] == job.id and listing["status"] == "completed"
    assert [(c["name"], c["step"], c["epoch"], c["val_loss"], c["best"])
            for c in listing["checkpoints"]] == [
        ("step-00000002", 2, 1, 1.5, True), ("step-00000004", 4, 2, 2.0, False),
    ]  # fmt: skip
    assert listing["best"] == "step-00000002"  # the lowest validation loss, not the latest
    assert all(c["size_bytes"] > 0 for c in listing["checkpoints"])
    assert listing["final"]["name"] == "final" and listing["final"]["size_bytes"] > 0

    started = await start_export(real, job.id)  # no body: the best checkpoint
    assert started["checkpoint"]["checkpoint"] == "step-00000002"
    export_id = started["job_id"]
    resp = await real.get(f"/training/exports/{export_id}/download")
    assert (await problem(resp, 409))["job_status"] in ("queued", "running")

    view = await finished_export(real, export_id)
    result = view["result"]
    assert view["download_url"] == f"/training/exports/{export_id}/download"
    assert view["training_job"] == job.id and view["dataset"] == DATASET
    assert result["base_model_kind"] == "llava" and result["dtype"] == "fp32"
    assert result["model_dir"] == f"exports/{export_id}/model"  # no server path shown
    exported = config.exports_dir / export_id / "model"
    assert {"config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json"} <= {
        f["name"] for f in result["files"]
    }
    assert result["size_bytes"] == sum(f["size_bytes"] for f in result["files"])
    unpacked = await download(real, view, tmp_path)
    assert_same_files(unpacked, exported, result["files"])
    await asyncio.to_thread(
        assert_merged, unpacked, str(root / "base_model"), root / "checkpoints/step-00000002",
        dataset,
    )  # fmt: skip


async def test_requests_that_name_nothing_to_export_are_refused(client) -> None:
    """Unknown jobs 404; a job without checkpoints 409 (or 404 for a named one); a bad name
    or dtype 422; the archive 409 until the export has completed."""
    config = client.app[CONFIG]
    install_dataset(config, DATASET, "extraction", "rendering", "conversion")
    unknown = "training_test_0123456789"
    await problem(await client.get(f"/training/{unknown}/checkpoints"), 404)
    await problem(await client.post(f"/training/{unknown}/export"), 404)
    await problem(await client.get("/training/exports/export_0123456789"), 404)
    await problem(await client.get("/training/exports/export_0123456789/download"), 404)

    bare = await training_job(client, status="failed")  # it never saved anything
    listing = await (await client.get(f"/training/{bare.id}/checkpoints")).json()
    assert listing["checkpoints"] == [] and listing["best"] is None and listing["final"] is None
    body = await problem(await client.post(f"/training/{bare.id}/export"), 409)
    assert body["type"].endswith("/no-checkpoint")
    for name in ("best", "step-00000009"):
        resp = await client.post(f"/training/{bare.id}/export", json={"checkpoint_name": name})
        await problem(resp, 404)
    for change, field in [
        ({"checkpoint_name": "latest"}, "checkpoint_name"),
        ({"checkpoint_name": "step-x"}, "checkpoint_name"),
        ({"dtype": "fp8"}, "dtype"),
        ({"output": "/tmp"}, "output"),
    ]:
        await problem(await client.post(f"/training/{bare.id}/export", json=change), 422, field)
    assert (await client.get("/training/jobs?kind=export")).status == 200

    held = await training_job(client)
    (run_dir(client, held) / "adapter").mkdir(parents=True)
    (run_dir(client, held) / "adapter" / "adapter_config.json").write_text("{}")
    blocker = await submit_fake(client, "--behaviour", "forever")  # the CPU slot is taken
    started = await start_export(client, held.id, {"checkpoint_name": "final", "dtype": "fp16"})
    assert started["job_status"] == "queued" and started["checkpoint"]["checkpoint"] == "final"
    export_id = started["job_id"]
    await problem(await client.get(f"/training/{export_id}/checkpoints"), 404)  # not training
    view = await (await client.get(f"/training/exports/{export_id}")).json()
    assert view["status"] == "queued" and view["download_url"] is None
    body = await problem(await client.get(f"/training/exports/{export_id}/download"), 409)
    assert body["job_status"] == "queued" and body["type"].endswith("/export-not-ready")
    for job_id in (export_id, blocker):
        assert (await client.post(f"/training/jobs/{job_id}/cancel")).status == 202
        await wait_for_status(client, job_id, ("cancelled",))
    await problem(await client.get(f"/training/exports/{export_id}/download"), 409)
    await problem(await client.get(f"/training/exports/{blocker}"), 404)  # not an export


async def test_a_tinyllava_checkpoint_exports_in_tinyllavas_layout(real, tmp_path: Path) -> None:
    from tests.train.tinyllava.checkpoints import write_checkpoint

    config = real.app[CONFIG]
    dataset = converted_dataset(config)
    texts = record_texts(read_split(dataset, "train"), 100)
    base = write_checkpoint(tmp_path / "OpenECADv2-tiny", texts, vocab_size=1000)
    job = await training_job(real)
    root = run_dir(real, job)
    root.mkdir(parents=True)
    (root / "train_config.json").write_text(json.dumps({"base_model": str(base)}))
    await asyncio.to_thread(write_run, root, base, [2.0, 1.0], True)

    started = await start_export(real, job.id, {"checkpoint_name": "best", "dtype": "fp32"})
    assert started["checkpoint"]["checkpoint"] == "step-00000004"
    view = await finished_export(real, started["job_id"])
    result = view["result"]
    assert result["base_model_kind"] == "tinyllava" and result["dtype"] == "fp32"
    names = {f["name"] for f in result["files"]}
    assert names >= TINYLLAVA_FILES, names
    exported = config.exports_dir / view["job_id"] / "model"
    merged_config = json.loads((exported / "config.json").read_text())
    assert merged_config["model_type"] == "tinyllava" and merged_config["torch_dtype"] == "float32"
    unpacked = await download(real, view, tmp_path)
    assert_same_files(unpacked, exported, result["files"])
    await asyncio.to_thread(
        assert_merged, unpacked, str(base), root / "checkpoints/step-00000004", dataset
    )


@pytest.mark.slow
async def test_a_real_test_run_exports_its_final_and_best_checkpoints(real, tmp_path) -> None:
    config = real.app[CONFIG]
    dataset = converted_dataset(config, train=4, val=2)
    test_run = {"dataset": DATASET, "train_samples": 4, "val_samples": 2, "epochs": 2,
                "batch_size": 2, "device": "cpu"}  # fmt: skip
    resp = await real.post("/training/test-run", data=json.dumps(test_run))
    assert resp.status == 202, await resp.text()
    job_id = (await resp.json())["job_id"]
    done = await wait_for_status(real, job_id, ("completed", "failed"), timeout=600)
    assert done["status"] == "completed", done

    listing = await (await real.get(f"/training/{job_id}/checkpoints")).json()
    checkpoints = listing["checkpoints"]
    assert [c["step"] for c in checkpoints] == [2, 4] and [c["epoch"] for c in checkpoints] == [
        1,
        2,
    ]
    assert all(c["size_bytes"] > 0 and c["val_loss"] is not None for c in checkpoints)
    best = min(checkpoints, key=lambda c: c["val_loss"])
    assert listing["best"] == best["name"] and [c["best"] for c in checkpoints].count(True) == 1
    assert listing["final"]["size_bytes"] > 0

    root = config.checkpoints_root / DATASET / job_id
    final = await start_export(real, job_id, {"checkpoint_name": "final"})
    chosen = await start_export(real, job_id, {"checkpoint_name": "best", "dtype": "fp32"})
    assert chosen["checkpoint"]["checkpoint"] == best["name"]
    for started, adapter in (
        (final, root / "adapter"),
        (chosen, root / "checkpoints" / best["name"]),
    ):
        view = await finished_export(real, started["job_id"])
        assert view["result"]["base_model_kind"] == "llava"
        unpacked = await download(real, view, tmp_path)
        exported = config.exports_dir / view["job_id"] / "model"
        assert_same_files(unpacked, exported, view["result"]["files"])
        await asyncio.to_thread(assert_merged, unpacked, str(root / "base_model"), adapter, dataset)
