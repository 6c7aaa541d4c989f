"""The ordered pool on Ray (extract and validate): the local pool's contract on a real cluster."""

from __future__ import annotations

import json

import pytest

from stages.executors import RAY, Executor, ordered_pool, parallel_map
from stages.executors.ray_executor import RayOrderedPool
from tests.executors.conftest import copy_dataset, files_of, run_stage, wait_idle
from tests.workpool_jobs import crashed, fail_on_two, square_or_die


def test_results_come_in_order_and_a_killed_worker_is_retried_then_counted(ray_cluster):
    items = [*range(20), 13]
    with RayOrderedPool(square_or_die, 2, crashed, chunk_size=3) as pool:
        results = list(pool.submit(items))
    assert [item for item, _ in results] == items
    assert [r for _, r in results] == [-1 if i == 13 else i * i for i in items]


def test_batches_are_read_in_submission_order_and_errors_are_raised_here(ray_cluster):
    with RayOrderedPool(square_or_die, 2, crashed, chunk_size=2) as pool:
        first = pool.submit(range(5))
        second = pool.submit(range(5, 9))
        assert [r for _, r in first] == [0, 1, 4, 9, 16]
        assert [r for _, r in second] == [25, 36, 49, 64]
        cancelled = pool.submit(range(100, 200))
        next(iter(cancelled))
        cancelled.cancel()
        assert [r for _, r in pool.submit([3])] == [9]
    with RayOrderedPool(fail_on_two, 2) as pool, pytest.raises(ValueError, match="item 2"):
        list(pool.submit(range(5)))
    import ray

    assert wait_idle(ray), "cancelled tasks still hold CPUs"


def test_parallel_map_on_ray_equals_the_local_one(ray_cluster):
    executor = Executor(RAY, ray_cluster)
    assert list(parallel_map(square_or_die, range(12), 2, 4, crashed, executor)) == [
        -1 if i == 13 else i * i for i in range(12)
    ]
    with ordered_pool(square_or_die, 2, crashed, executor=executor) as pool:
        assert isinstance(pool, RayOrderedPool)


def without_time(files: dict[str, bytes]) -> dict[str, bytes]:
    manifest = json.loads(files.pop("dataset.json"))
    manifest.pop("created_at")
    files["dataset.json"] = json.dumps(manifest, sort_keys=True).encode()
    return files


def test_extract_on_ray_writes_the_same_dataset_as_local(ray_cluster, tmp_path):
    common = ["--source", "synthetic", "--train-size", "12", "--val-size", "3", "--workers", "2"]
    common += ["--name", "same"]
    code, _, stderr = run_stage("extract", *common, "--output", str(tmp_path / "local"))
    assert code == 0, stderr
    code, events, stderr = run_stage(
        "extract", *common, "--output", str(tmp_path / "ray"),
        "--executor", "ray", "--ray-address", ray_cluster,
    )  # fmt: skip
    assert code == 0, stderr
    assert events[-1] == {"event": "done", "status": "completed"}
    local, on_ray = (
        without_time(files_of(tmp_path / "local")),
        without_time(files_of(tmp_path / "ray")),
    )
    assert local == on_ray


def test_validate_on_ray_reports_what_local_does(ray_cluster, synthetic_dataset, tmp_path):
    dataset = copy_dataset(synthetic_dataset, tmp_path / "ds")
    assert (
        run_stage("render", "--input", str(dataset), "--resolution", "64", "--workers", "2")[0] == 0
    )
    assert run_stage("convert", "--dataset", str(dataset), "--workers", "2")[0] == 0
    reports = []
    for extra in ([], ["--executor", "ray", "--ray-address", ray_cluster]):
        code, _, stderr = run_stage("validate", "--dataset", str(dataset), "--workers", "2", *extra)
        assert code == 0, stderr
        report = json.loads((dataset / "validation.json").read_text())
        for key in ("elapsed_s", "seconds", "validated_at", "created_at"):
            report.pop(key, None)
        reports.append(report)
    assert reports[0] == reports[1]
    assert reports[0]["valid"] is True


DRIVER = """
import sys, time
from stages.executors.ray_executor import RayOrderedPool
from tests.workpool_jobs import crashed, square_or_die
with RayOrderedPool(square_or_die, 2, crashed, address=sys.argv[1]) as pool:
    print([r for _, r in pool.submit([1, 13, 2])], flush=True)
    time.sleep(2)  # Ray reports the dead worker from a background thread meanwhile
"""


def test_ray_says_nothing_on_the_stages_stdout_when_a_worker_dies(ray_cluster):
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT
    from tests.executors.conftest import stage_env

    done = subprocess.run(
        [sys.executable, "-c", DRIVER, ray_cluster], capture_output=True, text=True,
        cwd=REPO_ROOT, env=stage_env(), timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[1, -1, 4]\n"
