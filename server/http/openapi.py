"""The OpenAPI document, built from the routes themselves.

Handlers are tagged with ``@documented(...)``; request bodies are pydantic models, whose JSON
schema pydantic writes for us. Nothing is listed twice by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from server.appkeys import CONFIG
from server.dataset_registry import IMAGE_NAME, NAME_PATTERN
from server.http.lookups import NAME_MAX
from server.http.middleware import PUBLIC_PATHS
from server.http.problems import CONTENT_TYPE as PROBLEM_JSON

H = TypeVar("H", bound=Callable[..., Any])

# What each error status means here; every error is a problem+json body (``Problem``).
ERRORS = {
    400: "the body is not JSON (or a required body is missing)",
    401: "no valid bearer token",
    404: "no such dataset, model, job or file",
    409: "the dataset is in use, not at the needed stage, or the job cannot do that now",
    413: "the body is over the configured limit",
    422: "a value is invalid; `field` names it",
    503: "storage failed, or this host cannot render; try again later",
    504: "a stage called while answering did not answer in time",
    507: "the server's storage is full",
}
PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "field": {"type": "string", "description": "the offending field, for bad input"},
        "instance": {"type": "string"},
    },
}
# Path parameters the routes check (422 when malformed), as the registry spells them.
PATH_SCHEMAS: dict[str, dict[str, Any]] = {
    "dataset_name": {"type": "string", "pattern": NAME_PATTERN.pattern},
    "filename": {"type": "string", "pattern": IMAGE_NAME.pattern, "maxLength": NAME_MAX},
}
SUCCESS_SCHEMAS = {
    "application/json": {"type": "object"},
    "image/png": {"type": "string", "format": "binary"},
    "model/stl": {"type": "string", "format": "binary"},
    "model/gltf-binary": {"type": "string", "format": "binary"},
    "application/x-tar": {"type": "string", "format": "binary"},
    # One server-sent event, as a client reads it.
    "text/event-stream": {
        "type": "object",
        "required": ["event", "data"],
        "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
    },
}


def documented(
    summary: str,
    *,
    body: type[BaseModel] | None = None,
    tag: str = "training",
    status: int | tuple[int, ...] = 200,
    errors: tuple[int, ...] = (),
    media_type: str | tuple[str, ...] = "application/json",
    query: Mapping[str, dict[str, Any]] | None = None,
    headers: Mapping[str, dict[str, Any]] | None = None,
    request_body: Mapping[str, dict[str, Any]] | None = None,
) -> Callable[[H], H]:
    """Describe a route for the OpenAPI document.

    ``status`` is the success status (or statuses); ``errors`` the statuses only this route
    answers beyond what its shape implies (a body: 400, 413, 422; path parameters: 404, and
    422 where they are checked; query or header parameters: 422; a configured token: 401;
    every route but the service ones: 503 and 507). ``query`` and ``headers`` map each
    parameter to its JSON schema (a ``description`` key in it describes the parameter).
    ``media_type`` may list several success types (a download of PNG, STL or GLB files);
    ``request_body`` maps media types to schemas for a body that is not a JSON model (an
    upload), and implies the same errors as a body.
    """

    def mark(handler: H) -> H:
        handler.__apidoc__ = {  # type: ignore[attr-defined]
            "summary": summary,
            "body": body,
            "tag": tag,
            "status": status if isinstance(status, tuple) else (status,),
            "errors": errors,
            "media_type": media_type if isinstance(media_type, tuple) else (media_type,),
            "request_body": dict(request_body or {}),
            "query": dict(query or {}),
            "headers": dict(headers or {}),
        }
        return handler

    return mark


def openapi_document(app: web.Application, title: str, version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Problem": PROBLEM_SCHEMA}
    secured = bool(app[CONFIG].api_token)
    for route in app.router.routes():
        if route.method in ("HEAD", "OPTIONS", "*"):
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("formatter") or info.get("path")
        doc = getattr(route.handler, "__apidoc__", None)
        if not path or doc is None:
            continue
        path_names = _path_params(path)
        params = [
            {"name": name, "in": "path", "required": True,
             "schema": PATH_SCHEMAS.get(name, {"type": "string"})}
            for name in path_names
        ]  # fmt: skip
        for where, given in (("query", doc["query"]), ("header", doc["headers"])):
            for name, schema in given.items():
                described = {k: v for k, v in schema.items() if k != "description"}
                param = {"name": name, "in": where, "required": False, "schema": described}
                if "description" in schema:
                    param["description"] = schema["description"]
                params.append(param)
        errors = set(doc["errors"])
        if doc["body"] is not None or doc["request_body"]:
            errors |= {400, 413, 422}
        if path_names:
            errors.add(404)
        if any(name in PATH_SCHEMAS for name in path_names) or doc["query"] or doc["headers"]:
            errors.add(422)
        if doc["tag"] != "service":
            errors |= {503, 507}
        public = path in PUBLIC_PATHS
        if secured and not public:
            errors.add(401)
        responses: dict[str, Any] = {
            str(status): {
                "description": "accepted: the work goes on as a job" if status == 202 else "done",
                "content": {m: {"schema": SUCCESS_SCHEMAS[m]} for m in doc["media_type"]},
            }
            for status in doc["status"]
        }
        for status in sorted(errors):
            responses[str(status)] = {
                "description": ERRORS[status],
                "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
            }
        operation: dict[str, Any] = {
            "summary": doc["summary"],
            "tags": [doc["tag"]],
            "parameters": params,
            "responses": responses,
        }
        if secured:
            operation["security"] = [] if public else _security(path)
        body = doc["body"]
        if body is not None:
            schema = body.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[body.__name__] = schema
            operation["requestBody"] = {
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{body.__name__}"}
                    }
                }
            }
        elif doc["request_body"]:
            operation["requestBody"] = {"required": True, "content": doc["request_body"]}
        paths.setdefault(path, {})[route.method.lower()] = operation
    components: dict[str, Any] = {"schemas": schemas}
    if secured:
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "access_token": {"type": "apiKey", "in": "query", "name": "access_token"},
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": dict(sorted(paths.items())),
        "components": components,
    }


def _security(path: str) -> list[dict[str, list[str]]]:
    """The bearer token; the SSE route also takes it as ``?access_token=`` (EventSource)."""
    if path.endswith("/events"):
        return [{"bearer": []}, {"access_token": []}]
    return [{"bearer": []}]


def _path_params(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]
