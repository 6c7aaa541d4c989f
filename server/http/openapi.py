"""The OpenAPI document, built from the routes themselves.

Handlers are tagged with ``@documented(...)``; request bodies are pydantic models, whose JSON
schema pydantic writes for us. Nothing is listed twice by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

H = TypeVar("H", bound=Callable[..., Any])


def documented(
    summary: str, *, body: type[BaseModel] | None = None, tag: str = "training", status: int = 200
) -> Callable[[H], H]:
    def mark(handler: H) -> H:
        handler.__apidoc__ = {"summary": summary, "body": body, "tag": tag, "status": status}  # type: ignore[attr-defined]
        return handler

    return mark


def openapi_document(app: web.Application, title: str, version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    for route in app.router.routes():
        if route.method in ("HEAD", "OPTIONS", "*"):
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("formatter") or info.get("path")
        doc = getattr(route.handler, "__apidoc__", None)
        if not path or doc is None:
            continue
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _path_params(path)
        ]
        operation: dict[str, Any] = {
            "summary": doc["summary"],
            "tags": [doc["tag"]],
            "parameters": params,
            "responses": {
                str(doc["status"]): {"description": "success"},
                "default": {
                    "description": "problem",
                    "content": {"application/problem+json": {"schema": {"type": "object"}}},
                },
            },
        }
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
        paths.setdefault(path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": schemas},
    }


def _path_params(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]
