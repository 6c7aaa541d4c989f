"""Inference routes: an image in, OpenECAD code and the solid it rebuilds out.

``POST /inference/reconstruct`` takes the image as multipart/form-data (field ``image``, the
parameters as form fields) or as a raw PNG/JPEG body (the parameters in the query string).
The image is checked before a pixel is decoded (at most ``MAX_SIDE`` px a side and
``MAX_PIXELS`` in all), then fully decoded (a truncated or corrupt file is a 422), and saved as
the PNG the model reads. The checkpoint is resolved as every other route does
(``server.checkpoints.choose``); the kept-warm model worker (``server.inference``) generates
the code, rebuilds its solid, draws its views and writes its meshes into the request's folder
``<var>/inference/<id>/`` (a pruned scratch folder), which
``GET /inference/reconstructions/{id}/{file}`` serves.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from PIL import Image, ImageOps, UnidentifiedImageError

from server import checkpoints
from server.appkeys import CONFIG, STORE
from server.bodies.inference import ReconstructRequest, field_schemas, form_schema
from server.http.lookups import NAME_MAX
from server.http.openapi import documented
from server.http.problems import ProblemError, invalid, not_found
from server.http.renderer import check_resolution, check_view, rendering_limits
from server.http.requests import validate
from server.inference import INFERENCE
from server.scratch import ScratchDir

routes = web.RouteTableDef()

PREFIX = "inference"
RECONSTRUCTION_ID = re.compile(rf"{PREFIX}_[0-9a-f]{{10}}")
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\.(png|stl|glb)")
CONTENT_TYPES = {"png": "image/png", "stl": "model/stl", "glb": "model/gltf-binary"}
INPUT_NAME = "input.png"
IMAGE_FIELD = "image"
FORMATS = ("PNG", "JPEG")
MAX_SIDE = 4096
MAX_PIXELS = 16_000_000
FIELD_BYTES = 64 * 1024  # one text form field
CHUNK = 64 * 1024
BINARY = {"type": "string", "format": "binary"}
URLENCODED = "application/x-www-form-urlencoded"
IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8")  # PNG and JPEG signatures


# --- reading the request ----------------------------------------------------------------------


def _too_large(limit: int) -> ProblemError:
    return ProblemError(
        413, f"the request body is over the limit of {limit} bytes", field=IMAGE_FIELD,
        kind="body-too-large",
    )  # fmt: skip


def _malformed(detail: str) -> ProblemError:
    return ProblemError(400, f"malformed multipart body: {detail}", field="body",
                        kind="malformed-body")  # fmt: skip


async def _read_part(part: BodyPartReader, room: int, limit: int, field_limit: int) -> bytes:
    """A part's bytes: over ``room`` (what is left of the body limit) is a 413, over
    ``field_limit`` (a text field's own limit) a 422 naming it."""
    data = bytearray()
    while chunk := await part.read_chunk(CHUNK):
        data += chunk
        if len(data) > room:
            raise _too_large(limit)
        if len(data) > field_limit:
            raise invalid(part.name or "body", f"form fields are at most {field_limit} bytes")
    return bytes(data)


async def _read_multipart(request: web.Request, limit: int) -> tuple[bytes | None, dict[str, Any]]:
    """The image and the text fields of a form, at most ``limit`` bytes in all."""
    image: bytes | None = None
    fields: dict[str, list[str]] = {}
    total = 0
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise _malformed("nested multipart parts are not supported")
            name = part.name
            if name == IMAGE_FIELD:
                if image is not None:
                    raise invalid(IMAGE_FIELD, "send one image")
                image = await _read_part(part, limit - total, limit, limit)
                total += len(image)
                continue
            raw = await _read_part(part, limit - total, limit, FIELD_BYTES)
            total += len(raw)
            if not name:
                raise _malformed("a part has no name")
            try:
                value = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise invalid(name, f"{name} is not UTF-8 text") from exc
            fields.setdefault(name, []).append(value)
    except (ValueError, AssertionError, KeyError, RuntimeError, HttpProcessingError) as exc:
        # HttpProcessingError: a part's headers aiohttp cannot parse (control characters)
        raise _malformed(str(exc) or type(exc).__name__) from exc
    return image, {name: v if len(v) > 1 else v[0] for name, v in fields.items()}


def _urlencoded(raw: bytes) -> dict[str, Any]:
    """The fields of an ``application/x-www-form-urlencoded`` body (repeated ones as lists)."""
    fields: dict[str, list[str]] = {}
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise invalid("body", "the form is not UTF-8 text") from exc
    for name, value in pairs:
        fields.setdefault(name, []).append(value)
    return {name: v if len(v) > 1 else v[0] for name, v in fields.items()}


def _merge(params: dict[str, Any], fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        if name in params:
            raise invalid(name, f"{name} is given both in the query and in the form")
        params[name] = value


async def read_upload(request: web.Request) -> tuple[bytes, ReconstructRequest]:
    """The image bytes and the validated parameters, from a form or a raw body. A raw body
    is taken whatever its Content-Type (``curl --data-binary`` sends a form's), unless it
    is a form without an image."""
    limit = request.app[CONFIG].max_body_bytes
    params: dict[str, Any] = {}
    for name in request.query:
        values = request.query.getall(name)
        params[name] = values if len(values) > 1 else values[0]
    if request.content_type == "multipart/form-data":
        image, fields = await _read_multipart(request, limit)
        _merge(params, fields)
    else:
        try:
            image = await request.read()
        except web.HTTPRequestEntityTooLarge as exc:
            raise _too_large(limit) from exc
        if request.content_type == URLENCODED and not image.startswith(IMAGE_MAGIC):
            _merge(params, _urlencoded(image))  # a form with no file: its fields, no image
            image = b""
    if not image:
        raise ProblemError(
            422,
            "no image: send it as the multipart/form-data field 'image', or as a raw "
            "image/png or image/jpeg body with the parameters in the query string",
            field=IMAGE_FIELD, kind="missing-image",
        )  # fmt: skip
    return image, validate(ReconstructRequest, params)


# --- checking the image -----------------------------------------------------------------------


def _open(data: bytes) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(io.BytesIO(data), formats=FORMATS)


def _pixels_problem(width: int | None = None, height: int | None = None) -> ProblemError:
    size = f" ({width}x{height})" if width is not None else ""
    return ProblemError(
        413,
        f"the image has too many pixels{size}: at most {MAX_SIDE} px a side and "
        f"{MAX_PIXELS:,} pixels",
        field=IMAGE_FIELD, kind="image-too-large",
    )  # fmt: skip


def checked_image(data: bytes) -> Image.Image:
    """The uploaded image decoded as RGB (transparency over white, EXIF rotation applied);
    its size is checked from the header before any pixel is decoded."""
    try:
        header = _open(data)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _pixels_problem() from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise invalid(IMAGE_FIELD, "the image is not a PNG or JPEG file") from exc
    width, height = header.size
    if max(width, height) > MAX_SIDE or width * height > MAX_PIXELS:
        raise _pixels_problem(width, height)
    try:
        header.verify()  # PNG: every chunk's CRC (catches bytes overwritten in the pixel data)
        image = _open(data)
        image.load()
        image = ImageOps.exif_transpose(image)
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            rgba = image.convert("RGBA")
            paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(paper, rgba).convert("RGB")
        return image.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _pixels_problem(width, height) from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
        raise invalid(IMAGE_FIELD, f"the image is truncated or corrupt: {exc}") from exc


def _save_input(data: bytes, path: Path) -> tuple[int, int]:
    image = checked_image(data)
    image.save(path, "PNG")
    return image.size


# --- the route ---------------------------------------------------------------------------------


def _urls(base: str, answer: dict[str, Any], resolution: int) -> dict[str, Any]:
    images = answer.get("images") or {}
    meshes = answer.get("meshes") or {}
    return {
        "views": [
            {"view": view, "url": base + name, "width": resolution, "height": resolution}
            for view, name in images.items()
        ],
        "mesh": {kind: base + name for kind, name in meshes.items()} or None,
    }


@routes.post("/inference/reconstruct")
@documented(
    "Reconstruct CAD from an image: OpenECAD code, whether it parses and builds, the solid's "
    "volume and bounding box, its rendered views and STL/GLB meshes",
    tag="inference",
    errors=(404, 409, 504),
    query=field_schemas(),
    request_body={
        "multipart/form-data": {"schema": form_schema()},
        "image/png": {"schema": BINARY},
        "image/jpeg": {"schema": BINARY},
    },
)
async def reconstruct(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    data, body = await read_upload(request)
    rendering = await rendering_limits(request.app)
    views = body.views if body.views is not None else list(rendering["default_views"])
    for index, view in enumerate(views):
        check_view(rendering, view, f"views.{index}")
    if len(set(views)) != len(views):
        raise invalid("views", "views must not repeat")
    check_resolution(rendering, body.resolution)
    chosen = await _chosen(request, body)
    with ScratchDir(config.inference_dir, PREFIX) as work:
        width, height = await asyncio.to_thread(_save_input, data, work.path / INPUT_NAME)
        task: dict[str, Any] = {
            "base_model": chosen.base_model,
            "adapter": str(chosen.adapter.resolve()) if chosen.adapter else None,
            "image": str(work.path / INPUT_NAME),
            "prompt": body.prompt,
            "max_new_tokens": body.max_new_tokens,
            "views": views,
            "resolution": body.resolution,
            "out_dir": str(work.path),
        }
        loop = asyncio.get_running_loop()
        started = loop.time()
        answer = await request.app[INFERENCE].call(task)
        total_s = loop.time() - started
    base = f"/inference/reconstructions/{work.id}/"
    timings = dict(answer.get("timings") or {})
    timings.update(worker_start_s=answer.get("worker_start_s"), total_s=round(total_s, 4))
    return web.json_response(
        {
            "success": True,
            "reconstruction_id": work.id,
            "checkpoint": chosen.description,
            "input_image": {"url": base + INPUT_NAME, "width": width, "height": height},
            "code": answer.get("code"),
            "answer": answer.get("answer"),
            "stopped": answer.get("stopped"),
            "new_tokens": answer.get("new_tokens"),
            "parses": answer.get("parses"),
            "builds": answer.get("builds"),
            "error": answer.get("error"),
            "solid": answer.get("solid"),
            **_urls(base, answer, body.resolution),
            "model_already_loaded": answer.get("model_already_loaded"),
            "device": answer.get("device"),
            "precision": answer.get("precision"),
            "timings": timings,
        }
    )


async def _chosen(request: web.Request, body: ReconstructRequest) -> checkpoints.ChosenCheckpoint:
    """The checkpoint, or its problem naming the field (a 404 for a job that is not there)."""
    config, store = request.app[CONFIG], request.app[STORE]
    try:
        return await checkpoints.choose(config, store, body.checkpoint, body.checkpoint_name)
    except ProblemError as exc:
        if exc.field is None:
            exc.field = "checkpoint_name" if exc.kind == "unknown-checkpoint" else "checkpoint"
        raise


@routes.get("/inference/reconstructions/{reconstruction_id}/{file}")
@documented(
    "A file of a reconstruction: its input image and views (PNG) or its mesh (STL, GLB)",
    tag="inference",
    media_type=tuple(CONTENT_TYPES.values()),
)
async def reconstruction_file(request: web.Request) -> web.StreamResponse:
    rid, name = request.match_info["reconstruction_id"], request.match_info["file"]
    if not RECONSTRUCTION_ID.fullmatch(rid):
        raise not_found("reconstruction", rid)
    match = FILE_NAME.fullmatch(name)
    if match is None or len(os.fsencode(name)) > NAME_MAX:
        raise not_found("file", name)
    folder = request.app[CONFIG].inference_dir / rid
    path = folder / name
    try:
        found = path.is_file() and not folder.is_symlink()
        found = found and path.resolve().parent == folder.resolve()  # no link out of it
    except OSError as exc:
        raise ProblemError(503, "the file could not be read", kind="storage-error") from exc
    if not found:
        raise not_found("file", name)
    kind = match.group(1)
    headers = {"Content-Type": CONTENT_TYPES[kind]}
    if kind != "png":
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return web.FileResponse(path, headers=headers)
