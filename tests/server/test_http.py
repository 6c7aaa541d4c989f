"""HTTP conventions: problem+json, body parsing, validation naming the field, auth, CORS."""

from __future__ import annotations

import json

import pytest

from server.app import create_app
from tests.server.conftest import make_config

EXTRACT = "/training/datasets/extract"


def body(**overrides):
    data = {"source": "synthetic", "train_size": 10, "val_size": 2, "output_name": "ds"}
    data.update(overrides)
    return json.dumps(data)


async def test_malformed_json_is_400(client):
    resp = await client.post(EXTRACT, data="{not json")
    assert resp.status == 400
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert problem["status"] == 400 and "JSON" in problem["detail"]


async def test_body_must_be_an_object(client):
    resp = await client.post(EXTRACT, data="[1, 2]")
    assert resp.status == 422 and (await resp.json())["field"] == "body"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("train_size", 0),
        ("train_size", -5),
        ("train_size", 10.5),
        ("train_size", "10"),
        ("val_size", 0),
        ("source", "shapenet"),
        ("seed", -1),
    ],
)
async def test_invalid_values_are_422_naming_the_field(client, field, value):
    resp = await client.post(EXTRACT, data=body(**{field: value}))
    assert resp.status == 422
    problem = await resp.json()
    assert problem["field"] == field
    assert resp.content_type == "application/problem+json"


@pytest.mark.parametrize("name", ["../x", "a/b", "", "x" * 65, "has space", ".hidden", "-dash"])
async def test_bad_dataset_names_are_422(client, name):
    resp = await client.post(EXTRACT, data=body(output_name=name))
    assert resp.status == 422, name
    assert (await resp.json())["field"] == "output_name"


async def test_unknown_fields_are_refused(client):
    resp = await client.post(EXTRACT, data=body(trian_size=3))
    assert resp.status == 422 and (await resp.json())["field"] == "trian_size"


async def test_body_limit_is_413(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(make_config(tmp_path, max_body_bytes=1024)))
    resp = await client.post(EXTRACT, data="x" * 4096)
    assert resp.status == 413
    assert resp.content_type == "application/problem+json"


async def test_unknown_dataset_is_404(client):
    for method, path in [
        ("GET", "/training/datasets/nothing/status"),
        ("POST", "/training/datasets/nothing/render"),
        ("POST", "/training/datasets/nothing/convert"),
        ("POST", "/training/datasets/nothing/validate"),
        ("DELETE", "/training/datasets/nothing"),
    ]:
        resp = await client.request(method, path, data="{}")
        assert resp.status == 404, path
        assert (await resp.json())["type"].endswith("unknown-dataset")


async def test_empty_registry(client):
    resp = await client.get("/training/datasets")
    assert resp.status == 200 and await resp.json() == {"datasets": [], "skipped": []}


async def test_openapi_lists_every_spec_route(client):
    doc = await (await client.get("/openapi.json")).json()
    for path in [
        "/training/info",
        "/training/render-views",
        "/training/batch-render",
        "/training/generate-pair",
        "/validation/training-pair",
        "/training/datasets/extract",
        "/training/datasets/{dataset_name}/status",
        "/training/datasets",
        "/training/datasets/{dataset_name}/render",
        "/training/jobs/{job_id}/progress",
        "/training/datasets/{dataset_name}/convert",
        "/training/datasets/{dataset_name}/validate",
        "/training/test-run",
        "/training/test-run/{job_id}/results",
        "/training/start",
        "/training/{job_id}/status",
    ]:
        assert path in doc["paths"], path
    extract = doc["paths"]["/training/datasets/extract"]["post"]
    schema_ref = extract["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert schema_ref.endswith("ExtractRequest")
    assert "train_size" in doc["components"]["schemas"]["ExtractRequest"]["properties"]


async def test_token_guards_everything_but_health(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(make_config(tmp_path, api_token="s3cret")))
    assert (await client.get("/health")).status == 200
    denied = await client.get("/training/datasets")
    assert denied.status == 401 and denied.content_type == "application/problem+json"
    wrong = await client.get("/training/datasets", headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401
    ok = await client.get("/training/datasets", headers={"Authorization": "Bearer s3cret"})
    assert ok.status == 200
    # Only the SSE route takes the token as a query parameter (EventSource has no headers).
    assert (await client.get("/training/datasets?access_token=s3cret")).status == 401
    sse = await client.get("/training/jobs/nope_1/events?access_token=s3cret")
    assert sse.status == 404


async def test_cors_for_configured_origins(aiohttp_client, tmp_path):
    config = make_config(tmp_path, cors_origins=("http://localhost:3000",))
    client = await aiohttp_client(create_app(config))
    preflight = await client.options(
        EXTRACT,
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    resp = await client.get("/health", headers={"Origin": "http://localhost:3000"})
    assert resp.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    other = await client.get("/health", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
