"""The service's settings: each ``CADVLM_*`` environment variable sets its config field (a
flag wins over it), and a real server process started with nothing but the environment
obeys it."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from server.config import Config, parse_args
from tests.conftest import REPO_ROOT
from tests.server.test_restart import free_port, wait_healthy

# variable -> (config field, value in the environment, the field's parsed value)
ENVIRONMENT: dict[str, tuple[str, str, Any]] = {
    "CADVLM_HOST": ("host", "0.0.0.0", "0.0.0.0"),
    "CADVLM_PORT": ("port", "9123", 9123),
    "CADVLM_VAR": ("var_dir", "/srv/cadvlm", Path("/srv/cadvlm")),
    "CADVLM_CPU_SLOTS": ("cpu_slots", "3", 3),
    "CADVLM_GPU_SLOTS": ("gpu_slots", "2", 2),
    "CADVLM_CORS_ORIGINS": (
        "cors_origins",
        "http://a.example, http://b.example:3000",
        ("http://a.example", "http://b.example:3000"),
    ),
    "CADVLM_API_TOKEN": ("api_token", "s3cret", "s3cret"),
    "CADVLM_MAX_BODY_MB": ("max_body_bytes", "2.5", int(2.5 * 1024 * 1024)),
    "DEEPCAD_ROOT": ("deepcad_root", "/data/deepcad", Path("/data/deepcad")),
    "CADVLM_SYNC_WAIT_S": ("sync_wait_s", "7.5", 7.5),
    "CADVLM_KILL_GRACE_S": ("kill_grace_s", "4", 4.0),
    "CADVLM_TRAIN_KILL_GRACE_S": ("train_kill_grace_s", "30", 30.0),
    "CADVLM_HEARTBEAT_S": ("heartbeat_s", "0.5", 0.5),
    "CADVLM_WORKERS": ("workers", "5", 5),
    "CADVLM_RAY_ADDRESS": ("ray_address", "10.0.0.7:6379", "10.0.0.7:6379"),
    "CADVLM_INFERENCE_MODELS": ("inference_models", "3", 3),
    "CADVLM_INFERENCE_TIMEOUT_S": ("inference_timeout_s", "45", 45.0),
    "CADVLM_STAGES_PACKAGE": ("stages_package", "elsewhere.stages", "elsewhere.stages"),
}


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No setting from the machine running the tests leaks into the parse."""
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_every_config_field_has_an_environment_variable() -> None:
    fields = {f.name for f in dataclasses.fields(Config)}
    assert fields == {field for field, _, _ in ENVIRONMENT.values()}


@pytest.mark.parametrize("variable", sorted(ENVIRONMENT))
def test_an_environment_variable_sets_its_field_and_only_it(
    clean_environment: pytest.MonkeyPatch, variable: str
) -> None:
    defaults = parse_args([])
    field, raw, expected = ENVIRONMENT[variable]
    clean_environment.setenv(variable, raw)
    config = parse_args([])
    assert getattr(config, field) == expected
    assert dataclasses.replace(config, **{field: getattr(defaults, field)}) == defaults


def test_a_flag_wins_over_the_environment(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("CADVLM_PORT", "9123")
    clean_environment.setenv("CADVLM_CPU_SLOTS", "3")
    config = parse_args(["--port", "9200", "--cpu-slots", "4"])
    assert (config.port, config.cpu_slots) == (9200, 4)


@pytest.mark.parametrize(
    "variable", ["CADVLM_CPU_SLOTS", "CADVLM_GPU_SLOTS", "CADVLM_WORKERS", "CADVLM_HEARTBEAT_S"]
)
def test_an_impossible_value_from_the_environment_is_refused(
    clean_environment: pytest.MonkeyPatch, variable: str
) -> None:
    clean_environment.setenv(variable, "0")
    with pytest.raises(SystemExit) as exc:
        parse_args([])
    assert exc.value.code == 2


@pytest.mark.parametrize(
    ("variable", "value"), [("CADVLM_PORT", "abc"), ("CADVLM_SYNC_WAIT_S", "soon")]
)
def test_a_value_that_is_not_a_number_is_a_usage_error_not_a_traceback(
    clean_environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable, value
) -> None:
    clean_environment.setenv(variable, value)
    with pytest.raises(SystemExit) as exc:
        parse_args([])
    assert exc.value.code == 2 and repr(value) in capsys.readouterr().err


def _get(port: int, path: str, headers: dict[str, str] | None = None, body: bytes | None = None):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, resp.headers, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, err.headers, json.loads(err.read())


@pytest.fixture
def env_only_server(tmp_path: Path) -> Iterator[tuple[int, Path, int]]:
    """``python -m server`` with no flags at all: every setting comes from the environment."""
    port, var = free_port(), tmp_path / "var"
    env = dict(
        os.environ,
        CADVLM_PORT=str(port),
        CADVLM_VAR=str(var),
        CADVLM_API_TOKEN="s3cret",
        CADVLM_CORS_ORIGINS="http://front.example",
        CADVLM_MAX_BODY_MB="0.001",
        CADVLM_STAGES_PACKAGE="tests.fake_stages",
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "server"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_healthy(port)
        yield port, var, server.pid
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


def test_a_server_started_from_the_environment_obeys_it(
    env_only_server: tuple[int, Path, int],
) -> None:
    port, var, pid = env_only_server  # it answers on CADVLM_PORT
    assert (var / "jobs.sqlite3").is_file()  # its state lives in CADVLM_VAR
    assert _get(port, "/training/datasets")[0] == 401  # CADVLM_API_TOKEN
    auth = {"Authorization": "Bearer s3cret", "Origin": "http://front.example"}
    status, headers, _ = _get(port, "/training/datasets", auth)
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "http://front.example"  # CORS_ORIGINS
    assert _get(port, "/training/datasets/extract", auth, b" " * 4096)[0] == 413  # MAX_BODY_MB
    extract = {"source": "synthetic", "train_size": 2, "val_size": 1, "output_name": "env"}
    status, _, started = _get(
        port, "/training/datasets/extract", auth, json.dumps(extract).encode()
    )
    assert status == 202, started
    assert _stage_started(pid, "tests.fake_stages.extract")  # CADVLM_STAGES_PACKAGE


def _stage_started(server_pid: int, module: str, timeout: float = 60) -> bool:
    """Whether the server starts ``python -m module`` within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in psutil.Process(server_pid).children():
            with contextlib.suppress(psutil.NoSuchProcess):
                if child.cmdline()[1:3] == ["-m", module]:
                    return True
        time.sleep(0.05)
    return False
