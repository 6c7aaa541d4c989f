"""Reading request bodies and query parameters into validated values.

Bodies are parsed as JSON whatever their Content-Type: a browser's ``fetch`` with a string
body and no headers sends ``text/plain``. pydantic models declare each endpoint's fields.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from server.http.jsonbody import parse_json
from server.http.problems import ProblemError, invalid

M = TypeVar("M", bound=BaseModel)
THREAD_PARSE_BYTES = 1024 * 1024  # larger bodies are parsed off the event loop


async def read_json(request: web.Request, *, required: bool = True) -> Any:
    raw = await request.read()
    if not raw.strip():
        if required:
            raise ProblemError(
                400, "the request needs a JSON body", field="body", kind="malformed-json"
            )
        return {}
    if len(raw) > THREAD_PARSE_BYTES:
        return await asyncio.to_thread(parse_json, raw)
    return parse_json(raw)


def _field_name(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def validate(model: type[M], data: Any) -> M:
    """Validate ``data`` against ``model``; the first problem becomes a 422 naming its field."""
    if not isinstance(data, dict):
        raise invalid("body", "the JSON body must be an object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = _field_name(first["loc"])
        problems = [{"field": _field_name(e["loc"]), "message": e["msg"]} for e in exc.errors()]
        raise invalid(field, f"{field}: {first['msg']}", errors=problems) from exc


async def read_body(request: web.Request, model: type[M], *, required: bool = True) -> M:
    return validate(model, await read_json(request, required=required))


def query_int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise invalid(name, f"{name} must be an integer") from exc
    if not lo <= value <= hi:
        raise invalid(name, f"{name} must be between {lo} and {hi}")
    return value
