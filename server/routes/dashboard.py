"""The built-in dashboard: static files of ``server/dashboard/`` at ``/`` and ``/dashboard/``.

Plain ES modules, no build step. Every file is answered with its content type, an ETag and
``Cache-Control: no-cache`` (the browser keeps a copy and revalidates it, so a new release
is picked up at once and an unchanged file costs a 304). The files need no token: the page
asks for one and sends it with every API call.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path

from aiohttp import web

from server.appkeys import CONFIG

routes = web.RouteTableDef()

STATIC_DIR = Path(__file__).resolve().parent.parent / "dashboard"
FILE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*\.(html|js|css|svg|txt)$")
CONTENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "svg": "image/svg+xml",
    "txt": "text/plain; charset=utf-8",
}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
        "script-src 'self'; connect-src 'self'; frame-ancestors 'none'"
    ),
}


@lru_cache(maxsize=64)
def _load(path: Path, mtime_ns: int, size: int) -> tuple[bytes, str]:
    data = path.read_bytes()
    return data, '"' + hashlib.sha256(data).hexdigest()[:20] + '"'


AUTH_MARK = b'<meta name="cadvlm-auth" content="none">'
AUTH_TOKEN = b'<meta name="cadvlm-auth" content="token">'


@lru_cache(maxsize=8)
def _with_auth(data: bytes, etag: str) -> tuple[bytes, str]:
    """The page tells the script a token is needed, so it asks before its first call."""
    return data.replace(AUTH_MARK, AUTH_TOKEN), etag[:-1] + '-t"'


def _serve(request: web.Request, name: str) -> web.Response:
    match = FILE_NAME.fullmatch(name)
    path = STATIC_DIR / name
    if match is None or not path.is_file():
        raise web.HTTPNotFound()
    stat = path.stat()
    data, etag = _load(path, stat.st_mtime_ns, stat.st_size)
    if name == "index.html" and request.app[CONFIG].api_token:
        data, etag = _with_auth(data, etag)
    headers = {"ETag": etag, "Cache-Control": "no-cache", **SECURITY_HEADERS}
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = CONTENT_TYPES[match.group(1)]
    return web.Response(body=data, headers=headers)


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    return _serve(request, "index.html")


@routes.get("/dashboard/{file}")
async def static_file(request: web.Request) -> web.Response:
    return _serve(request, request.match_info["file"])
