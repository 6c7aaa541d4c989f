"""Rendering on Ray: the same images as the local pool, resume, crashes, cancel, bad addresses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from stages.executors import RAY, Executor
from stages.protocol import Reporter
from stages.render.batch import render_dataset
from stages.render.images import is_valid_png
from stages.render.ray_pool import RayRenderPool
from stages.render.settings import RenderSettings
from tests.conftest import REPO_ROOT
from tests.executors.conftest import (
    copy_dataset,
    files_of,
    free_port,
    result_of,
    run_stage,
    stage_env,
    wait_idle,
)
from tests.render.parts import load_part_file, write_part_dataset

RENDER = ["--views", "front,top,iso", "--resolution", "96", "--workers", "2", "--composite"]


def manifest_without_time(dataset):
    manifest = json.loads((dataset / "dataset.json").read_text())
    manifest.pop("created_at")
    return manifest


def test_ray_renders_byte_identical_images_and_resumes(ray_cluster, synthetic_dataset, tmp_path):
    local = copy_dataset(synthetic_dataset, tmp_path / "local")
    on_ray = copy_dataset(synthetic_dataset, tmp_path / "ray")
    code, _, stderr = run_stage("render", "--input", str(local), *RENDER)
    assert code == 0, stderr
    ray_args = ["--executor", "ray", "--ray-address", ray_cluster]
    code, events, stderr = run_stage("render", "--input", str(on_ray), *RENDER, *ray_args)
    assert code == 0, stderr
    assert result_of(events)["executor"] == "ray"
    assert {e["event"] for e in events} <= {"start", "progress", "warning", "result", "done"}
    images = files_of(local / "images")
    assert len(images) == 20 * 4
    assert files_of(on_ray / "images") == images
    assert manifest_without_time(on_ray) == manifest_without_time(local)
    assert (on_ray / "skipped.json").read_bytes() == (local / "skipped.json").read_bytes()

    removed = sorted(images)[:5]  # resume: only what is missing is drawn again
    for name in removed:
        (on_ray / "images" / name).unlink()
    code, events, stderr = run_stage("render", "--input", str(on_ray), *RENDER, *ray_args)
    assert code == 0, stderr
    result = result_of(events)
    assert result["images_rendered"] == 5 and result["images_existing"] == 75
    assert files_of(on_ray / "images") == images


def test_a_private_instance_is_started_without_an_address(synthetic_dataset, tmp_path):
    dataset = copy_dataset(synthetic_dataset, tmp_path / "ds")
    ids = sorted(path.stem for path in (dataset / "cad_json").rglob("*.json"))[:2]
    code, events, stderr = run_stage(
        "render", "--input", str(dataset), "--resolution", "64", "--workers", "2",
        "--executor", "ray", "--models", ",".join(ids),
    )  # fmt: skip
    assert code == 0, stderr
    assert result_of(events)["rendered"] == 2


@pytest.mark.parametrize("address", ["127.0.0.1:{free}", "not-an-address"])
def test_an_unreachable_cluster_is_a_failed_run_with_one_line(synthetic_dataset, tmp_path, address):
    dataset = copy_dataset(synthetic_dataset, tmp_path / "ds")
    started = time.monotonic()
    code, events, _ = run_stage(
        "render", "--input", str(dataset), "--resolution", "64",
        "--executor", "ray", "--ray-address", address.format(free=free_port()),
    )  # fmt: skip
    assert time.monotonic() - started < 30
    assert code == 1
    done = events[-1]
    assert done["status"] == "failed" and done["reason"] == "ray_unavailable"
    assert "\n" not in done["error"] and "Ray" in done["error"]
    assert json.loads((dataset / "dataset.json").read_text())["stages"]["rendering"] == "failed"


def test_a_killed_ray_worker_is_retried_once_then_counted(ray_cluster, tmp_path):
    marker = tmp_path / "killed_once"
    specs = {
        "a": {"part": "box", "args": {"size": (0.02, 0.01, 0.01)}},
        "b": {"part": "l_bracket", "kill_once": str(marker)},
        "c": {"kill": True},
        "d": {"part": "plate_with_hole"},
    }
    write_part_dataset(tmp_path, specs)
    settings = RenderSettings.checked(views="front,top", resolution=64)
    result = render_dataset(
        tmp_path, tmp_path, settings, Reporter("render", "none"), workers=2,
        load=load_part_file, executor=Executor(RAY, ray_cluster),
    )  # fmt: skip
    assert marker.exists(), "the first attempt at b killed its Ray worker"
    assert result["failed_models"] == {"c": "worker_crashed"}
    assert result["rendered"] == 3
    for model_id in ("a", "b", "d"):
        assert is_valid_png(tmp_path / "images" / f"{model_id}_front.png", 64)


def test_a_stuck_model_times_out_and_its_actor_is_replaced(ray_cluster, tmp_path):
    from stages.render.task import ModelTask

    # one actor: "first" warms it up (a fresh actor's first model also gets the start-up
    # allowance), "stuck" then runs past the hard limit, "after" needs a fresh actor
    specs = {"first": {"part": "box"}, "stuck": {"sleep": 600}, "after": {"part": "l_bracket"}}
    specs["first"]["args"] = {"size": (0.02, 0.01, 0.01)}
    write_part_dataset(tmp_path, specs)
    folder = tmp_path / "cad_json" / "0000"
    tasks = [ModelTask(i, folder / f"{i}.json", tmp_path / "images") for i in specs]
    settings = RenderSettings.checked(views="front", resolution=64, time_limit=0.5)
    with RayRenderPool(1, settings, load=load_part_file, grace_s=1.0) as pool:
        outcomes = {o.model_id: o for o in pool.run(tasks)}
    assert outcomes["stuck"].reason == "timeout"
    assert outcomes["first"].ok and outcomes["after"].ok
    assert is_valid_png(tmp_path / "images" / "after_front.png", 64)


def snapshot(folder):
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


@pytest.mark.slow
def test_cancel_stops_every_ray_task_and_nothing_is_written_after(ray_cluster, tmp_path):
    import ray

    dataset = tmp_path / "big"
    code, _, stderr = run_stage(
        "extract", "--source", "synthetic", "--train-size", "150", "--val-size", "10",
        "--output", str(dataset), "--workers", "2",
    )  # fmt: skip
    assert code == 0, stderr
    process = subprocess.Popen(
        [sys.executable, "-m", "stages.render", "--progress", "json", "--input", str(dataset),
         "--views", "front,top,right,iso,back,left,bottom", "--resolution", "1024",
         "--workers", "2", "--executor", "ray", "--ray-address", ray_cluster],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO_ROOT,
        env=stage_env(), start_new_session=True,
    )  # fmt: skip
    assert process.stdout is not None
    for line in process.stdout:
        event = json.loads(line)
        if event["event"] == "progress" and event["extra"].get("images_rendered", 0) >= 14:
            break
    os.killpg(process.pid, signal.SIGTERM)
    started = time.monotonic()
    rest = process.stdout.read()
    process.wait(timeout=10)  # the server's kill grace
    assert time.monotonic() - started < 10
    assert json.loads(rest.strip().splitlines()[-1])["status"] == "cancelled"
    images = dataset / "images"
    before = snapshot(images)
    assert wait_idle(ray, timeout=5), "a Ray worker is still busy after the stage ended"
    time.sleep(3)
    assert snapshot(images) == before, "images were written after the stage ended"
    assert 0 < len([n for n in before if n.endswith(".png")]) < 160 * 7
