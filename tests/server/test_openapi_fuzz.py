"""Schemathesis over every operation of the OpenAPI document the service serves.

A real server process (its own port and var/ folder, a bearer token configured) runs the
stages of ``tests.fuzz_stages``: the request-time calls are the real stages, the jobs quick
stand-ins. Its data root holds real datasets at each stage (extracted, rendered,
converted) and its store a few real jobs; half the generated requests have their path
parameters and body fields swapped for those real names (and a real model, record, view
and resolution), so the fuzzer gets past the 404s into the routes' real work. Every
response must be: no 5xx, an error only as application/problem+json whose ``status`` is the
response's, a status the document lists with the content type and schema it documents, and
no success without the token.

Deterministic (derandomized generation, no example database) and bounded: the default run
takes well under a minute on two cores; the ``slow`` one runs more examples on a server
without a token and with the default 16 MB body limit.
"""

from __future__ import annotations

import copy
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
)

from server.app import create_app
from server.config import Config
from server.http.openapi import openapi_document
from server.routes.system import _version
from tests.conftest import REPO_ROOT

TOKEN = "fuzz-token"
DATASETS = ("fz_extracted", "fz_rendered", "fz_converted")
DOOMED = tuple(f"fz_doomed_{i}" for i in range(3))  # what DELETE may remove
MODEL_IDS = ("00000001", "00000002", "00000003")
BODY_FIELDS = ("dataset", "model_id", "model", "models", "record", "views", "view", "resolution")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def problem_json(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every error is RFC 9457 problem+json, its ``status`` the response's own."""
    if response.status_code < 400:
        return None
    headers = {name.lower(): value for name, value in response.headers.items()}
    content_type = headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type.split(";")[0].strip() == "application/problem+json", (
        f"{response.status_code} answered as {content_type!r}: {response.text[:200]!r}"
    )
    body = json.loads(response.text)
    assert body.get("status") == response.status_code, body
    assert all(isinstance(body.get(key), str) for key in ("type", "title", "detail")), body
    return None


# --- a real server over seeded data -------------------------------------------------------


def stage(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", *args, "--progress", "none"],
        cwd=REPO_ROOT, check=True, capture_output=True, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Path:
    """Real datasets, once per module: extracted, rendered (front, 64 px) and converted."""
    root = tmp_path_factory.mktemp("fuzz_seed")
    work = root / "work"
    stage("stages.extract", "--source", "synthetic", "--train-size", "2", "--val-size", "1",
          "--output", str(work), "--name", "fz", "--workers", "1")  # fmt: skip
    shutil.copytree(work, root / "fz_extracted")
    for name in DOOMED:
        shutil.copytree(work, root / name)
    stage("stages.render", "--input", str(work), "--views", "front", "--resolution", "64",
          "--workers", "1")  # fmt: skip
    shutil.copytree(work, root / "fz_rendered")
    stage("stages.convert", "--dataset", str(work), "--workers", "1")
    shutil.copytree(work, root / "fz_converted")
    shutil.rmtree(work)
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base: str, method: str, path: str, body: dict | None = None, token: str | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def wait_for(base: str, token: str | None, job_id: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, job = call(base, "GET", f"/training/jobs/{job_id}/progress", token=token)
        if status == 200 and job["status"] not in ("queued", "running"):
            return
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end")


class Server:
    """``python -m server`` on a free port over ``var``, with some real jobs and renders."""

    def __init__(self, var: Path, seeded: Path, token: str | None, max_body_mb: float) -> None:
        data_root = var / "data" / "training"
        data_root.mkdir(parents=True)
        for entry in seeded.iterdir():
            shutil.copytree(entry, data_root / entry.name)
        self.token = token
        self.base = f"http://127.0.0.1:{free_port()}"
        self.log = open(var / "server.log", "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server", "--port", self.base.rsplit(":", 1)[1],
             "--var", str(var), "--stages-package", "tests.fuzz_stages", "--workers", "1",
             "--sync-wait", "2", "--kill-grace", "1", "--train-kill-grace", "1",
             "--heartbeat", "0.5", "--max-body-mb", str(max_body_mb),
             *(["--api-token", token] if token else [])],
            cwd=REPO_ROOT, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.job_ids: list[str] = []
        self.render_ids: list[str] = []
        self.images: list[str] = [f"{MODEL_IDS[0]}_front.png"]

    def start(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                if call(self.base, "GET", "/health")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"the server did not start; see {self.log.name}")
            time.sleep(0.1)
        self._jobs()

    def _post(self, path: str, body: dict) -> dict:
        status, answer = call(self.base, "POST", path, body, self.token)
        assert status in (200, 202), (path, status, answer)
        return answer

    def _jobs(self) -> None:
        """A finished render, extract and test-run, a cancelled render and one render-views."""
        render = {"views": ["front"], "resolution": 64}
        for path, body in [
            ("/training/datasets/fz_extracted/render", render),
            ("/training/datasets/extract",
             {"source": "synthetic", "train_size": 1, "val_size": 1, "output_name": "fz_new"}),
            ("/training/test-run", {"dataset": "fz_converted", "train_samples": 1, "epochs": 1}),
        ]:  # fmt: skip
            job_id = self._post(path, body)["job_id"]
            wait_for(self.base, self.token, job_id)
            self.job_ids.append(job_id)
        job_id = self._post("/training/datasets/fz_rendered/render", render)["job_id"]
        self._post(f"/training/jobs/{job_id}/cancel", {})
        wait_for(self.base, self.token, job_id)
        self.job_ids.append(job_id)
        views = self._post(
            "/training/render-views",
            {"dataset": "fz_extracted", "model_id": MODEL_IDS[0], "views": ["front"],
             "resolution": 64, "response": "url"},
        )  # fmt: skip
        self.render_ids.append(views["render_id"])
        self.images.append(views["views"][0]["url"].rsplit("/", 1)[1])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def fuzz_schema(token: str | None, max_examples: int) -> tuple[Any, dict[str, Any], dict]:
    """The schema of the document the server serves (built from the same app), that
    document, and the real values its server fixture fills in for the hooks to swap in.

    (Built here rather than fetched: a pytest-parametrized schema must exist when the tests
    are collected. The fixture checks that the server serves exactly this document.)
    """
    config = schemathesis.Config.from_dict(
        {
            "generation": {
                "mode": "all",
                "max-examples": max_examples,
                "deterministic": True,
                "database": "none",
            },
            "cache": {"enabled": False},
            "request-timeout": 30,
            "max-stream-events": 50,
        }
    )
    document = built_document(token)
    schema = schemathesis.openapi.from_dict(copy.deepcopy(document), config=config)
    known: dict[str, tuple[str, ...]] = {}

    def swap(context: Any, values: Any, names: tuple[str, ...]) -> Any:
        """What was generated, or the same with every field we know a real value of
        swapped for one (all at once: a dataset's image needs both a real dataset and a
        real file name)."""
        if not isinstance(values, dict):
            return st.just(values)
        method = context.operation.method.upper() if context.operation else ""
        real = {name: known.get(f"{method} {name}") or known.get(name) for name in names}
        real = {name: choices for name, choices in real.items() if choices and name in values}
        if not real:
            return st.just(values)
        swapped = {
            name: st.sampled_from(real[name]) if name in real else st.just(value)
            for name, value in values.items()
        }
        return st.one_of(st.just(values), st.fixed_dictionaries(swapped))

    @schema.hook
    def flatmap_path_parameters(context, path_parameters):
        return swap(context, path_parameters, ("dataset_name", "job_id", "render_id", "filename"))

    @schema.hook
    def flatmap_body(context, body):
        return swap(context, body, BODY_FIELDS)

    return schema, document, known


def built_document(token: str | None) -> dict[str, Any]:
    app = create_app(Config(var_dir=Path("unused"), api_token=token))
    return openapi_document(app, "cadvlm", _version())


def differences(served: dict, fuzzed: dict) -> list[str]:
    ops = {
        (path, method)
        for doc in (served, fuzzed)
        for path, methods in doc["paths"].items()
        for method in methods
    }
    changed = [
        f"{method.upper()} {path}"
        for path, method in sorted(ops)
        if served["paths"].get(path, {}).get(method) != fuzzed["paths"].get(path, {}).get(method)
    ]
    return changed or ["components"]


def serve(
    tmp_path_factory, seeded: Path, token: str | None, fuzzed: dict, known: dict,
    max_body_mb: float,
) -> Iterator[Server]:  # fmt: skip
    server = Server(tmp_path_factory.mktemp("fuzz") / "var", seeded, token, max_body_mb)
    try:
        server.start()
        status, served = call(server.base, "GET", "/openapi.json", token=token)
        assert status == 200, served
        assert served == fuzzed, differences(served, fuzzed)  # what is fuzzed is what is served
        converted = seeded / "fz_converted"
        model = json.loads(next((converted / "cad_json").rglob("*.json")).read_text())
        record = json.loads((converted / "train.json").read_text())[0]
        known.update(
            {
                "dataset_name": DATASETS,
                "DELETE dataset_name": DOOMED,
                "job_id": tuple(server.job_ids),
                "render_id": tuple(server.render_ids),
                "filename": tuple(server.images),
                # body fields: a real model, record, view and resolution (what this host
                # renders) are what takes a request past validation into the stages
                "dataset": DATASETS,
                "model_id": MODEL_IDS,
                "model": (model,),
                "models": ([model],),
                "record": (record,),
                "views": (["front"],),
                "view": ("front",),
                "resolution": (64,),
            }
        )
        yield server
    finally:
        server.stop()


guarded, guarded_document, guarded_known = fuzz_schema(TOKEN, max_examples=8)
open_api, open_document, open_known = fuzz_schema(None, max_examples=30)


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory, seeded) -> Iterator[Server]:
    # A 30 kB body limit: the fuzzer's biggest bodies (10,000 inline models, as many files
    # to write) are a 413 here; only the slow run sends them through.
    yield from serve(
        tmp_path_factory, seeded, TOKEN, guarded_document, guarded_known, max_body_mb=0.03
    )


@pytest.fixture(scope="module")
def open_server(tmp_path_factory, seeded) -> Iterator[Server]:
    yield from serve(tmp_path_factory, seeded, None, open_document, open_known, max_body_mb=16)


def call_and_check(case: Any, base: str, headers: dict[str, str], checks: list) -> None:
    response = case.call(base_url=base, headers=headers)
    if known_gap(response):
        return
    case.validate_response(
        response,
        checks=checks,
        additional_checks=[problem_json],
        headers=headers,
        transport_kwargs={"base_url": base, "headers": headers},
    )


def known_gap(response: Any) -> bool:
    """Cases being fixed elsewhere (issue 15), left out here until they are; remove each
    one with its fix.

    - A request line or header over aiohttp's 8190-byte limit is refused by the HTTP parser
      before any middleware runs, as a text/plain 400 (the "long headers -> problem+json"
      case of issue 15).
    """
    return response.status_code == 400 and response.text.startswith("Got more than 8190 bytes")


@guarded.parametrize()
def test_every_operation_with_the_token(case, guarded_server):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    call_and_check(case, guarded_server.base, auth, [*CHECKS, ignored_auth])


@pytest.mark.slow
@open_api.parametrize()
def test_every_operation_at_length_without_a_token(case, open_server):
    call_and_check(case, open_server.base, {}, CHECKS)
