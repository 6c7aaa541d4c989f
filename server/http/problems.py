"""RFC 9457 problem details: every error the service returns has this shape."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aiohttp import web

PROBLEM_TYPE_BASE = "/problems/"
CONTENT_TYPE = "application/problem+json"


class ProblemError(Exception):
    """Raise from a handler to answer with a problem+json body."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        field: str | None = None,
        title: str | None = None,
        kind: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field
        self.title = title or HTTPStatus(status).phrase
        self.kind = kind or self.title.lower().replace(" ", "-")
        self.headers = headers or {}
        self.extra = extra


def problem_response(
    status: int,
    detail: str,
    *,
    field: str | None = None,
    title: str | None = None,
    kind: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    title = title or HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + (kind or title.lower().replace(" ", "-")),
        "title": title,
        "status": status,
        "detail": detail,
    }
    if field is not None:
        body["field"] = field
    if instance is not None:
        body["instance"] = instance
    body.update(extra)
    return web.json_response(body, status=status, content_type=CONTENT_TYPE, headers=headers)


def from_error(error: ProblemError, instance: str | None = None) -> web.Response:
    return problem_response(
        error.status,
        error.detail,
        field=error.field,
        title=error.title,
        kind=error.kind,
        instance=instance,
        headers=error.headers,
        **error.extra,
    )


def not_found(what: str, name: str) -> ProblemError:
    return ProblemError(404, f"no {what} named {name!r}", kind=f"unknown-{what}")


def conflict(detail: str, **extra: Any) -> ProblemError:
    return ProblemError(409, detail, **extra)


def invalid(field: str, detail: str, **extra: Any) -> ProblemError:
    """A 422 naming the field whose value is wrong."""
    return ProblemError(422, detail, field=field, kind="invalid-value", **extra)
