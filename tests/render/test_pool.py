"""The worker pool: one bad model never stops the others."""

from __future__ import annotations

import pytest

from stages.protocol import Reporter
from stages.render.batch import render_dataset
from stages.render.images import is_valid_png
from stages.render.settings import RenderSettings
from stages.render.task import ModelTask
from stages.render.worker import RenderPool, RenderSetupError
from tests.render.parts import load_part_file, write_part_dataset

SETTINGS = RenderSettings.checked(views="front,top", resolution=96, time_limit=0.5)


def tasks_for(tmp_path, specs):
    write_part_dataset(tmp_path, specs)
    folder = tmp_path / "cad_json" / "0000"
    return [ModelTask(i, folder / f"{i}.json", tmp_path / "images") for i in specs]


@pytest.mark.slow
def test_failures_crashes_and_timeouts_are_outcomes_and_the_rest_go_on(tmp_path):
    specs = {
        "good1": {"part": "box", "args": {"size": (0.02, 0.01, 0.01)}},
        "broken": {"fail": "open_loop"},
        "crasher": {"crash": 3},
        "good2": {"part": "plate_with_hole"},
        "stuck": {"sleep": 600},
        "good3": {"part": "l_bracket"},
    }
    pool = RenderPool(1, SETTINGS, load=load_part_file, grace_s=1.0, recycle_after=2)
    with pool:
        outcomes = {o.model_id: o for o in pool.run(tasks_for(tmp_path, specs))}
    assert set(outcomes) == set(specs)
    assert outcomes["broken"].reason == "open_loop"
    assert outcomes["crasher"].reason == "worker_crashed"
    assert outcomes["stuck"].reason == "timeout"
    for model_id in ("good1", "good2", "good3"):  # before and after recycling and replacing
        assert outcomes[model_id].ok and outcomes[model_id].images_written == 2
        assert is_valid_png(tmp_path / "images" / f"{model_id}_top.png", 96)


def test_a_worker_without_gl_stops_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("PYOPENGL_PLATFORM", "x11")  # a window system, on a machine without one
    monkeypatch.delenv("DISPLAY", raising=False)
    specs = {"m": {"part": "l_bracket"}}
    with RenderPool(1, SETTINGS, load=load_part_file) as pool, pytest.raises(RenderSetupError):
        list(pool.run(tasks_for(tmp_path, specs)))


@pytest.mark.slow
def test_workers_that_keep_dying_at_once_stop_the_run(tmp_path):
    specs = {f"crash{i}": {"crash": 3} for i in range(4)}
    pool = RenderPool(1, SETTINGS, load=load_part_file)
    with pool, pytest.raises(RenderSetupError, match="3 render workers in a row died"):
        list(pool.run(tasks_for(tmp_path, specs)))


def render_parts(tmp_path, specs, workers):
    """The render stage's batch over test parts, in real worker processes."""
    write_part_dataset(tmp_path, specs)
    settings = RenderSettings.checked(views="front,top", resolution=64)
    return render_dataset(
        tmp_path, tmp_path, settings, Reporter("render", "none"), workers=workers,
        load=load_part_file,
    )  # fmt: skip


def test_a_model_whose_worker_is_killed_is_retried_in_a_fresh_worker(tmp_path):
    marker = tmp_path / "killed_once"
    specs = {
        "a": {"part": "box", "args": {"size": (0.02, 0.01, 0.01)}},
        "b": {"part": "l_bracket", "kill_once": str(marker)},
        "c": {"part": "plate_with_hole"},
        "d": {"part": "l_bracket"},
    }
    result = render_parts(tmp_path, specs, workers=2)
    assert marker.exists(), "the first attempt at b killed its worker with SIGKILL"
    assert (result["rendered"], result["failed"], result["failures_by_reason"]) == (4, 0, {})
    for model_id in specs:
        for view in ("front", "top"):
            assert is_valid_png(tmp_path / "images" / f"{model_id}_{view}.png", 64)


def test_a_model_that_kills_every_worker_is_one_failure_and_the_rest_complete(tmp_path):
    specs = {
        "a": {"part": "box", "args": {"size": (0.02, 0.01, 0.01)}},
        "b": {"kill": True},
        "c": {"part": "plate_with_hole"},
    }
    result = render_parts(tmp_path, specs, workers=1)
    assert result["failures_by_reason"] == {"worker_crashed": 1}
    assert result["failed_models"] == {"b": "worker_crashed"}
    assert result["rendered"] == 2
    for model_id in ("a", "c"):
        assert is_valid_png(tmp_path / "images" / f"{model_id}_front.png", 64)
