"""Cross-cutting HTTP behaviour: problem+json errors, bearer-token auth, CORS."""

from __future__ import annotations

import errno
import hmac
import logging
import sqlite3

from aiohttp import HttpVersion11, web

from server.config import Config
from server.http.problems import ProblemError, from_error, problem_response
from server.jobs.store import DELETION_PREFIX, DatasetBusy

log = logging.getLogger("server.http")

PUBLIC_PATHS = frozenset({"/health"})
# The dashboard's static files: the page asks for the token and sends it with each call.
DASHBOARD_PATHS = ("/", "/dashboard/")
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})


@web.middleware
async def problems_middleware(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    """Turn every error, including unknown routes and wrong methods, into problem+json."""
    try:
        return await handler(request)
    except ProblemError as exc:
        return from_error(exc, instance=request.path)
    except DatasetBusy as exc:  # lost a race for a dataset: the claim is the last word
        if exc.holder.startswith(DELETION_PREFIX):
            detail, extra = f"dataset {exc.dataset!r} is being deleted", {}
        else:
            detail = f"dataset {exc.dataset!r} is in use by job {exc.holder}"
            extra = {"job_id": exc.holder}
        return problem_response(409, detail, instance=request.path, kind="dataset-in-use", **extra)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        if exc.status == 404:
            detail = f"no route for {request.method} {request.path}"
        elif exc.status == 405:
            detail = f"{request.method} is not allowed on {request.path}"
        elif exc.status == 413:
            detail = "the request body is larger than the configured limit"
        return problem_response(exc.status, detail, instance=request.path, headers=headers)
    except Exception as exc:
        if storage_fault(exc):
            log.exception("storage error on %s %s", request.method, request.path)
            return storage_problem(exc, request.path)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response(500, "internal error; see the server log", instance=request.path)


def storage_fault(exc: BaseException) -> bool:
    """A write the disk refused (full, read-only, failing): the caller may retry later."""
    if isinstance(exc, OSError):
        return exc.errno in STORAGE_ERRNOS
    return isinstance(exc, sqlite3.OperationalError)


def storage_problem(exc: BaseException, instance: str) -> web.Response:
    """507 for a full disk, 503 for the rest; the log, not the body, keeps the details."""
    full = getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "full" in str(exc)
    status = 507 if full else 503
    detail = "the server's storage is full" if full else "the server's storage failed"
    return problem_response(
        status, f"{detail}; try again later", instance=instance, kind="storage-error"
    )


def expect_handler(max_body_bytes: int):
    """Answer ``Expect: 100-continue`` only for a body the server will take: a client that
    announces too large a body gets its 413 before it sends a byte of it."""

    async def handler(request: web.Request) -> web.StreamResponse | None:
        if request.version != HttpVersion11:
            return None
        if request.headers.get("Expect", "").lower() != "100-continue":
            return problem_response(
                417, "only 'Expect: 100-continue' is understood", instance=request.path
            )
        if (request.content_length or 0) > max_body_bytes:
            return problem_response(
                413, "the request body is larger than the configured limit", instance=request.path
            )
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return None

    return handler


def auth_middleware(token: str) -> web.Middleware:
    """Require ``Authorization: Bearer <token>`` everywhere but /health.

    The SSE route also accepts ``?access_token=``: a browser's EventSource cannot send headers.
    """
    expected = token.encode()

    @web.middleware
    async def middleware(request: web.Request, handler: web.Handler) -> web.StreamResponse:
        if request.path in PUBLIC_PATHS or request.method == "OPTIONS" or _dashboard(request):
            return await handler(request)
        supplied = ""
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            supplied = header[7:].strip()
        elif request.path.endswith("/events"):
            supplied = request.query.get("access_token", "")
        # Headers arrive decoded with surrogate escapes for bytes that are not UTF-8.
        if not hmac.compare_digest(supplied.encode(errors="surrogateescape"), expected):
            raise ProblemError(
                401,
                "a valid bearer token is required",
                kind="unauthorized",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return await handler(request)

    return middleware


def _dashboard(request: web.Request) -> bool:
    path = request.path
    return request.method in ("GET", "HEAD") and (
        path == DASHBOARD_PATHS[0] or path.startswith(DASHBOARD_PATHS[1])
    )


def _origin_allowed(origins: tuple[str, ...], origin: str | None) -> bool:
    return origin is not None and ("*" in origins or origin in origins)


def cors_preflight(origins: tuple[str, ...]) -> web.Middleware:
    """Answer CORS preflight requests for allowed origins."""

    @web.middleware
    async def middleware(request: web.Request, handler: web.Handler) -> web.StreamResponse:
        if request.method == "OPTIONS" and _origin_allowed(origins, request.headers.get("Origin")):
            return web.Response(status=204)
        return await handler(request)

    return middleware


def cors_headers(origins: tuple[str, ...]):
    """Add CORS headers just before any response (streams included) sends its headers."""

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin")
        if not _origin_allowed(origins, origin):
            return
        response.headers["Access-Control-Allow-Origin"] = "*" if "*" in origins else origin
        response.headers["Vary"] = "Origin"
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = (
            "Authorization, Content-Type, Last-Event-ID"
        )
        response.headers["Access-Control-Expose-Headers"] = "Location"

    return on_prepare


def build_middlewares(config: Config) -> list[web.Middleware]:
    middlewares: list[web.Middleware] = []
    if config.cors_origins:
        middlewares.append(cors_preflight(config.cors_origins))
    middlewares.append(problems_middleware)
    if config.api_token:
        middlewares.append(auth_middleware(config.api_token))
    return middlewares
