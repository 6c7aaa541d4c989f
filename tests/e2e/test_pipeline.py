"""The spec's frontend workflow end to end against a real service and real stages."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request

import pytest

from scripts.pipeline_client import PipelineClient
from tests.conftest import DEEPCAD_SAMPLES

SPEC_KEYS = {
    "extract": {"success", "job_id", "status", "estimated_time", "output_path"},
    "progress": {"job_id", "status", "progress", "stats"},
    "dataset_status": {"dataset", "status", "progress", "stages"},
    "dataset_list_item": {"name", "models", "images", "conversations", "size", "status"},
    "results": {"epochs", "loss_progression", "total_improvement", "convergence", "overfitting",
                "performance"},
    "training_status": {"job_id", "status", "progress", "metrics", "estimated_remaining"},
}  # fmt: skip


def run_workflow(
    service, source: str, train: int, val: int, **options
) -> tuple[dict, PipelineClient]:
    client = PipelineClient(service.url, on_message=lambda _m: None)
    out = asyncio.run(
        client.run_pipeline(
            name="e2e",
            source=source,
            train_size=train,
            val_size=val,
            views=["front", "top", "right"],
            resolution=128,
            test_run={
                "train_samples": 12,
                "val_samples": 3,
                "epochs": 3,
                "device": "cpu",
                "batch_size": 4,
            },
            training={
                "epochs": 1,
                "batch_size": 4,
                "lora_r": 8,
                "lora_alpha": 16,
                "learning_rate": 0.002,
                "device": "cpu",
                "train_samples": 12,
                "val_samples": 3,
            },
            train_when=("excellent", "good", "poor"),
            **options,
        )
    )
    return out, client


def check_spec_shapes(out: dict) -> None:
    assert SPEC_KEYS["progress"] <= out["extract"].keys()
    assert SPEC_KEYS["dataset_status"] <= out["status"].keys()
    assert set(out["status"]["stages"]) == {"extraction", "rendering", "conversion", "validation"}
    assert all(v == "completed" for v in out["status"]["stages"].values()), out["status"]
    (item,) = [d for d in out["datasets"]["datasets"] if d["name"] == "e2e"]
    assert SPEC_KEYS["dataset_list_item"] <= item.keys()
    assert item["status"] == "ready"
    convert = out["convert"]["output"]
    assert convert["train_file"] == "data/training/e2e/train.json"
    assert convert["train_conversations"] > 0 and convert["val_conversations"] > 0
    assert item["conversations"] == convert["train_conversations"] + convert["val_conversations"]
    validation = out["validate"]
    assert validation["success"] is True
    for key in ("format_valid", "all_images_exist", "conversations_valid", "no_missing_files"):
        assert validation["validation"][key] is True
    assert validation["stats"]["image_resolution"] == "128x128"
    results = out["test_run"]["results"]
    assert SPEC_KEYS["results"] <= results.keys()
    progression = results["loss_progression"]
    assert [r["epoch"] for r in progression] == [1, 2, 3]
    assert progression[-1]["train_loss"] < progression[0]["train_loss"]
    assert results["convergence"] in ("excellent", "good", "poor")
    assert SPEC_KEYS["training_status"] <= out["training"].keys()
    assert out["training"]["status"] == "completed"


def sse_events(service, job_id: str) -> list[tuple[str, dict]]:
    """Every stored event of a finished job, read back through its SSE stream."""
    url = f"{service.url}/training/jobs/{job_id}/events"
    events, name, data = [], None, None
    with urllib.request.urlopen(url, timeout=60) as stream:
        for raw in stream:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data = json.loads(line[5:].strip())
            elif not line and name:
                events.append((name, data))
                if name == "end":
                    break
                name, data = None, None
    return events


@pytest.mark.slow
def test_synthetic_workflow(service):
    service.start()
    out, client = run_workflow(service, "synthetic", 6, 2)
    check_spec_shapes(out)
    test_job = out["test_run"]["job_id"]
    epochs = [d for n, d in sse_events(service, test_job) if n == "metric" and d["kind"] == "epoch"]
    assert out["test_run"]["results"]["loss_progression"] == [
        {"epoch": d["epoch"], "train_loss": d["train_loss"], "val_loss": d["val_loss"]}
        for d in epochs
    ]
    item = next(d for d in out["datasets"]["datasets"] if d["name"] == "e2e")
    assert item["models"] == 8 and item["images"] == 24
    checkpoint = service.var / out["training"]["checkpoint_dir"]
    assert checkpoint.is_dir() and any(checkpoint.iterdir())
    assert [r.stage for r in client.records] == [
        "extract", "render", "convert", "validate", "test-run", "training",
    ]  # fmt: skip


@pytest.mark.slow
def test_deepcad_samples_workflow(service):
    service.deepcad_root = DEEPCAD_SAMPLES
    service.start()
    # Real parts have long programs: lift the 0.89B model's answer budget so none is dropped.
    out, _ = run_workflow(service, "deepcad", 6, 2, convert_options={"max_answer_tokens": 8192})
    check_spec_shapes(out)
    records = json.loads((service.var / "data/training/e2e/train.json").read_text())
    assert all(r["conversations"][0]["value"].startswith("<image>\n") for r in records)


@pytest.mark.slow
def test_server_restart_during_render_resumes_without_rework(service):
    service.start()
    client = PipelineClient(service.url, on_message=lambda _m: None)

    async def scenario() -> tuple[dict, int]:
        body = {"source": "synthetic", "train_size": 30, "val_size": 6, "output_name": "r"}
        extract = await client.call("POST", "/training/datasets/extract", body)
        assert (await client.follow(extract["job_id"], "extract"))["status"] == "completed"
        render = await client.call(
            "POST",
            "/training/datasets/r/render",
            {"views": ["front", "top", "right"], "resolution": 512, "workers": 1},
        )
        job_id = render["job_id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            progress = await client.call("GET", f"/training/jobs/{job_id}/progress")
            if progress["progress"]["current"] >= 5:
                break
            await asyncio.sleep(0.05)
        service.kill()
        service.start()
        final = await client.follow(job_id, "render")
        return final, job_id

    final, job_id = asyncio.run(scenario())
    assert final["status"] == "completed"
    result = final["result"]
    assert result["skipped_existing"] >= 5  # what the first attempt wrote was kept
    assert result["rendered"] + result["skipped_existing"] == 36
    images = sorted((service.var / "data/training/r/images").glob("*.png"))
    assert len(images) == 36 * 3
    events = asyncio.run(client.call("GET", f"/training/jobs/{job_id}/progress"))
    assert events["status"] == "completed"
