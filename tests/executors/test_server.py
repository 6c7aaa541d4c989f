"""The service side of the executor: request fields, stage flags, the submit-time probe."""

from __future__ import annotations

import pytest

from server.bodies.datasets import ExtractRequest
from server.bodies.records import ValidateRequest
from server.bodies.render import DatasetRenderRequest
from server.config import Config, parse_args
from server.executors import executor_args
from server.http.problems import ProblemError
from stages.executors import available_executors
from tests.executors.conftest import free_port


def test_the_executor_field_defaults_to_local_and_is_not_a_plain_flag():
    for body in (
        ExtractRequest(train_size=1, val_size=1, output_name="x", executor="ray"),
        DatasetRenderRequest(executor="ray"),
        ValidateRequest(executor="ray"),
    ):
        assert "--executor" not in body.to_args()
    assert DatasetRenderRequest().executor == "local"
    with pytest.raises(ValueError, match="executor"):
        DatasetRenderRequest(executor="dask")


def test_the_ray_address_comes_from_the_flag_or_the_environment(monkeypatch):
    monkeypatch.delenv("CADVLM_RAY_ADDRESS", raising=False)
    assert parse_args([]).ray_address is None
    assert parse_args(["--ray-address", "10.0.0.1:6379"]).ray_address == "10.0.0.1:6379"
    monkeypatch.setenv("CADVLM_RAY_ADDRESS", "head:6379")
    assert parse_args([]).ray_address == "head:6379"
    assert "ray" in available_executors()


async def test_local_adds_nothing_and_ray_without_an_address_starts_a_private_instance(tmp_path):
    config = Config(var_dir=tmp_path)
    assert await executor_args(config, DatasetRenderRequest(), tmp_path) == []
    assert await executor_args(config, DatasetRenderRequest(executor="ray"), tmp_path) == [
        "--executor",
        "ray",
    ]


async def test_an_unreachable_cluster_is_a_422_naming_the_executor(tmp_path):
    config = Config(var_dir=tmp_path, ray_address=f"127.0.0.1:{free_port()}")
    with pytest.raises(ProblemError) as caught:
        await executor_args(config, ValidateRequest(executor="ray"), tmp_path)
    assert caught.value.status == 422
    assert caught.value.field == "executor"
    assert "cannot reach the Ray cluster" in caught.value.detail


async def test_a_cluster_whose_workers_see_the_folder_is_passed_on(ray_cluster, tmp_path):
    config = Config(var_dir=tmp_path, ray_address=ray_cluster)
    args = await executor_args(config, DatasetRenderRequest(executor="ray"), tmp_path)
    assert args == ["--executor", "ray", "--ray-address", ray_cluster]
    assert list(tmp_path.iterdir()) == [], "the probe's marker file is removed"


async def test_a_dataset_folder_the_probe_cannot_find_is_a_422(ray_cluster, tmp_path):
    config = Config(var_dir=tmp_path, ray_address=ray_cluster)
    with pytest.raises(ProblemError) as caught:
        await executor_args(config, DatasetRenderRequest(executor="ray"), tmp_path / "absent")
    assert (caught.value.status, caught.value.field) == (422, "executor")
