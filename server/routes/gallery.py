"""What a dataset page shows: its records page by page, small thumbnails of its images, and
its reports (the extraction manifest, the validation report, the models a stage left out).

Thumbnails are made with Pillow on first request and kept under ``<var>/cache/thumbnails/``
(remade when the image is newer), so a gallery of a large dataset never ships 512 px PNGs
for the browser to shrink.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from aiohttp import web
from PIL import Image, UnidentifiedImageError

from server import dataset_registry as registry
from server.appkeys import CONFIG
from server.http.lookups import NAME_MAX, _inside
from server.http.openapi import documented
from server.http.problems import ProblemError, invalid, not_found
from server.http.redact import redactor_for
from server.http.requests import query_int
from stages.dataset.layout import MANIFEST, RECORD_FILES, REPORT_FILE, SKIPS_FILE, images_dir

routes = web.RouteTableDef()

THUMB_SIZES = (32, 512)  # the smallest and largest edge a thumbnail may ask for
THUMB_DEFAULT = 128
RECORDS_MAX = 200


def thumbnails_dir(config: Any, name: str, size: int) -> Path:
    return config.var_dir / "cache" / "thumbnails" / name / str(size)


@routes.get("/training/datasets/{dataset_name}/thumbnails/{filename}")
@documented(
    "A rendered image of a dataset scaled down to `size` pixels (PNG, cached)",
    media_type="image/png",
    query={
        "size": {
            "type": "integer",
            "minimum": THUMB_SIZES[0],
            "maximum": THUMB_SIZES[1],
            "default": THUMB_DEFAULT,
            "description": "the longest edge in pixels",
        }
    },
)
async def thumbnail(request: web.Request) -> web.StreamResponse:
    config = request.app[CONFIG]
    name = registry.check_name(request.match_info["dataset_name"], "dataset_name")
    filename = registry.check_image_name(request.match_info["filename"])
    size = query_int(request, "size", THUMB_DEFAULT, *THUMB_SIZES)
    if len(os.fsencode(filename)) > NAME_MAX:
        raise invalid("filename", f"image names are at most {NAME_MAX} bytes")
    folder = images_dir(registry.dataset_dir(config, name))
    source = folder / filename
    try:
        found = source.is_file() and _inside(source, folder)
    except OSError as exc:
        raise ProblemError(503, "the image could not be read", kind="storage-error") from exc
    if not found:
        raise not_found("image", filename)
    cached = thumbnails_dir(config, name, size) / filename
    data = await asyncio.to_thread(_thumbnail, source, cached, size)
    return web.Response(
        body=data,
        headers={"Content-Type": "image/png", "Cache-Control": "private, max-age=300"},
    )


def _thumbnail(source: Path, cached: Path, size: int) -> bytes:
    try:
        if cached.is_file() and cached.stat().st_mtime_ns >= source.stat().st_mtime_ns:
            return cached.read_bytes()
    except OSError:
        pass
    try:
        with Image.open(source) as img:
            img.thumbnail((size, size), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            img.save(out, format="PNG")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise invalid("filename", "the image cannot be decoded") from exc
    data = out.getvalue()
    try:  # the cache is a convenience: a disk that refuses it costs a resize next time
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(cached)
    except OSError:
        pass
    return data


@lru_cache(maxsize=4)
def _records(path: Path, mtime_ns: int, size: int) -> list[Any]:
    with path.open("rb") as f:
        data = json.load(f)
    return data if isinstance(data, list) else []


def _read_records(path: Path) -> list[Any] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    try:
        return _records(path, stat.st_mtime_ns, stat.st_size)
    except (OSError, ValueError, RecursionError) as exc:
        raise ProblemError(503, f"{path.name} could not be read", kind="storage-error") from exc


@routes.get("/training/datasets/{dataset_name}/records")
@documented(
    "A page of a dataset's TinyLLaVA records (train or val), in file order",
    query={
        "split": {"type": "string", "enum": list(RECORD_FILES), "default": "train"},
        "offset": {"type": "integer", "minimum": 0, "maximum": 10**9, "default": 0},
        "limit": {"type": "integer", "minimum": 1, "maximum": RECORDS_MAX, "default": 20},
    },
)
async def records(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    name = registry.check_name(request.match_info["dataset_name"], "dataset_name")
    split = request.query.get("split", "train")
    if split not in RECORD_FILES:
        raise invalid("split", f"split must be one of {', '.join(RECORD_FILES)}")
    offset = query_int(request, "offset", 0, 0, 10**9)
    limit = query_int(request, "limit", 20, 1, RECORDS_MAX)
    if not registry.has_dataset(config, name):
        raise not_found("dataset", name)
    path = registry.dataset_dir(config, name) / RECORD_FILES[split]
    rows = await asyncio.to_thread(_read_records, path)
    return web.json_response(
        {
            "dataset": name,
            "split": split,
            "converted": rows is not None,
            "total": len(rows or []),
            "offset": offset,
            "limit": limit,
            "records": (rows or [])[offset : offset + limit],
        }
    )


def _read_json(path: Path) -> Any:
    try:
        with path.open("rb") as f:
            return json.load(f)
    except (OSError, ValueError, RecursionError):
        return None


@routes.get("/training/datasets/{dataset_name}/report")
@documented(
    "A dataset's extraction manifest (counts, replaced models by reason), its validation "
    "report and the models a stage left out"
)
async def report(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    name = registry.check_name(request.match_info["dataset_name"], "dataset_name")
    if not registry.has_dataset(config, name):
        raise not_found("dataset", name)
    folder = registry.dataset_dir(config, name)
    parts = await asyncio.to_thread(
        lambda: {key: _read_json(folder / f) for key, f in
                 (("manifest", MANIFEST), ("validation", REPORT_FILE), ("skipped", SKIPS_FILE))}
    )  # fmt: skip
    redactor = redactor_for(config)
    return web.json_response({"dataset": name, **redactor.value(parts)})
