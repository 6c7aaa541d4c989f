"""The spec's frontend workflow end to end against a real service and real stages."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import psutil
import pytest

from scripts.pipeline_client import PipelineClient
from stages.dataset.layout import image_file_name, images_dir
from stages.render.batch import load_catalog
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


@dataclass
class RecordingClient(PipelineClient):
    """The pipeline client, keeping the first reply to each request for the spec checks."""

    replies: dict[tuple[str, str], Any] = field(default_factory=dict)

    async def call(self, method: str, path: str, body: Any = None, ok=(200, 202)) -> Any:
        data = await super().call(method, path, body, ok)
        self.replies.setdefault((method, path), data)
        return data


def run_workflow(
    service, source: str, train: int, val: int, **options
) -> tuple[dict, RecordingClient]:
    client = RecordingClient(service.url, on_message=lambda _m: None)
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
                "eval_samples": 2,
            },
            train_when=("excellent", "good", "poor"),
            **options,
        )
    )
    return out, client


def check_spec_shapes(out: dict, client: RecordingClient) -> None:
    checked = set()

    def has_spec_keys(shape: str, body: dict) -> None:
        assert SPEC_KEYS[shape] <= body.keys(), (shape, body)
        checked.add(shape)

    started = client.replies[("POST", "/training/datasets/extract")]
    has_spec_keys("extract", started)
    assert started["success"] is True and started["status"] == "started"
    assert started["job_id"].startswith("extract_")
    assert started["job_id"] == out["extract"]["job_id"]
    assert started["output_path"] == "data/training/e2e"
    # measured, never a constant: none until a job of the kind has run on this server
    assert (started["estimated_time"] is None) == (started["estimated_time_s"] is None)
    has_spec_keys("progress", out["extract"])
    has_spec_keys("dataset_status", out["status"])
    assert set(out["status"]["stages"]) == {"extraction", "rendering", "conversion", "validation"}
    assert all(v == "completed" for v in out["status"]["stages"].values()), out["status"]
    (item,) = [d for d in out["datasets"]["datasets"] if d["name"] == "e2e"]
    has_spec_keys("dataset_list_item", item)
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
    has_spec_keys("results", results)
    progression = results["loss_progression"]
    assert [r["epoch"] for r in progression] == [1, 2, 3]
    assert progression[-1]["train_loss"] < progression[0]["train_loss"]
    assert results["convergence"] in ("excellent", "good", "poor")
    has_spec_keys("training_status", out["training"])
    assert out["training"]["status"] == "completed"
    assert checked == SPEC_KEYS.keys()  # every shape the spec gives was checked


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
    evaluate = {"samples": 2, "max_new_tokens": 16, "device": "cpu"}
    out, client = run_workflow(service, "synthetic", 6, 2, evaluate=evaluate)
    check_spec_shapes(out, client)
    assert out["training"]["evaluation"]["count"] == 2  # the run scored itself
    evaluation = out["evaluation"]
    assert evaluation["summary"]["count"] == 2 and len(evaluation["samples"]) == 2
    assert evaluation["checkpoint"]["job_id"] == out["training"]["job_id"]
    reconstruct = out["reconstruct"]
    assert isinstance(reconstruct["code"], str) and reconstruct["image"].endswith(".png")
    assert reconstruct["builds"] <= reconstruct["parses"]  # nothing builds that did not parse
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
        "extract", "render", "convert", "validate", "test-run", "training", "evaluate",
        "reconstruct",
    ]  # fmt: skip


@pytest.mark.slow
def test_deepcad_samples_workflow(service):
    service.deepcad_root = DEEPCAD_SAMPLES
    service.start()
    # Real parts have long programs: lift the 0.89B model's answer budget so none is dropped.
    out, client = run_workflow(
        service, "deepcad", 6, 2, convert_options={"max_answer_tokens": 8192}
    )
    check_spec_shapes(out, client)
    records = json.loads((service.var / "data/training/e2e/train.json").read_text())
    assert all(r["conversations"][0]["value"].startswith("<image>\n") for r in records)


@pytest.mark.slow
def test_server_restart_during_render_resumes_without_rework(service):
    """The server dies with exactly five models rendered: one render worker draws the models
    in turn, and the sixth one's first image is a FIFO that its existing-image check blocks
    on, so the render cannot get past it; once the five models' images are written the test
    freezes the render (SIGSTOP, long before the worker's hard time limit could end the
    wait) and kills the server. After the restart the resumed job keeps those five and
    renders the rest."""
    service.start()
    client = PipelineClient(service.url, on_message=lambda _m: None)
    dataset = service.var / "data/training/r"
    views = ["front", "top", "right"]

    async def scenario() -> tuple[dict, str]:
        body = {"source": "synthetic", "train_size": 30, "val_size": 6, "output_name": "r"}
        extract = await client.call("POST", "/training/datasets/extract", body)
        assert (await client.follow(extract["job_id"], "extract"))["status"] == "completed"
        order = list(load_catalog(dataset, None).models)
        images = images_dir(dataset)
        images.mkdir(exist_ok=True)
        blocker = images / image_file_name(order[5], views[0])
        os.mkfifo(blocker)
        render = await client.call(
            "POST", "/training/datasets/r/render",
            {"views": views, "resolution": 512, "workers": 1},
        )  # fmt: skip
        first_five = [images / image_file_name(m, view) for m in order[:5] for view in views]
        deadline = time.monotonic() + 120
        while not all(path.is_file() for path in first_five):
            assert time.monotonic() < deadline, "the first five models were never rendered"
            await asyncio.sleep(0.05)
        # Freeze the render where it stands (its worker's clock too): the orphan the killed
        # server leaves can then do nothing more until the next server kills it.
        server = psutil.Process(service.process.pid)
        (stage,) = [p for p in server.children() if p.cmdline()[1:3] == ["-m", "stages.render"]]
        os.killpg(stage.pid, signal.SIGSTOP)
        service.kill()
        blocker.unlink()  # the next attempt finds the sixth model's image missing
        service.start()
        return await client.follow(render["job_id"], "render"), render["job_id"]

    final, job_id = asyncio.run(scenario())
    assert final["status"] == "completed"
    result = final["result"]
    assert result["skipped_existing"] == 5  # what the first attempt wrote was kept
    assert result["rendered"] == 31
    written = sorted(images_dir(dataset).glob("*.png"))
    assert len(written) == 36 * 3 and all(path.is_file() for path in written)
    progress = asyncio.run(client.call("GET", f"/training/jobs/{job_id}/progress"))
    assert progress["status"] == "completed"
