"""Generated OpenECAD code back to geometry: the solid it builds, its views and its meshes.

What a reconstruction answers beside the code (``stages.train.infer_worker``). The code goes
only through the project's interpreter (``parse_code`` reads it with ``ast`` and never
executes it) and ``build_solid`` (bounded by a time limit); the views are drawn by the same
renderer as a dataset's images, so a reconstruction compares with them side by side. Lengths
are reported, and the meshes written, in millimetres, the code's own unit (the solid itself
is in DeepCAD metres).

A program that does not parse or build is an answer, not a failure: ``parses``/``builds``
say how far it got and ``error`` says why it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stages.cad.limits import BUILD_TIME_LIMIT_S
from stages.cad.model import CadError

MM_PER_M = 1000.0
STEM = "reconstruction"  # <stem>_<view>.png, <stem>.stl, <stem>.glb
MESH_FORMATS = ("stl", "glb")


def rebuild(
    text: str,
    out_dir: Path,
    views: Sequence[str],
    resolution: int,
    renderer: Callable[[], Any],
    *,
    time_limit: float = BUILD_TIME_LIMIT_S,
) -> dict[str, Any]:
    """Parse and build the code in ``text`` (an answer, fenced or not), draw ``views`` of
    its solid at ``resolution`` into ``out_dir`` and write its STL and GLB meshes there.

    ``renderer`` returns an open ``OrthoRenderer``; it is only called for a solid that built.
    File names in the result are relative to ``out_dir``."""
    from stages.cad.openecad import parse_code, unwrap_answer
    from stages.cad.solid import build_solid

    code = unwrap_answer(text)
    result: dict[str, Any] = {
        "code": code,
        "parses": False,
        "builds": False,
        "error": None,
        "solid": None,
        "images": {},
        "meshes": {},
        "timings": {"build_s": 0.0, "render_s": 0.0, "mesh_s": 0.0},
    }
    timings = result["timings"]
    started = time.perf_counter()
    try:
        model = parse_code(code, STEM)
    except CadError as exc:
        timings["build_s"] = _since(started)
        result["error"] = _error("parse", exc)
        return result
    result["parses"] = True
    try:
        solid = build_solid(model, time_limit=time_limit)
    except CadError as exc:
        result["error"] = _error("build", exc)
        return result
    finally:
        timings["build_s"] = _since(started)
    result["builds"] = True
    result["solid"] = solid_facts(solid)

    started = time.perf_counter()
    try:
        result["meshes"] = write_meshes(solid, out_dir, STEM)
    except (OSError, ValueError) as exc:
        result["error"] = {"stage": "mesh", "reason": "mesh_failed", "detail": str(exc)}
    timings["mesh_s"] = _since(started)

    started = time.perf_counter()
    try:
        from stages.render.single import draw_solid

        paths = draw_solid(renderer(), solid, out_dir, STEM, views, resolution)
        result["images"] = {view: path.name for view, path in paths.items()}
    except (OSError, RuntimeError, ValueError) as exc:
        result["error"] = {"stage": "render", "reason": "render_failed", "detail": str(exc)}
    timings["render_s"] = _since(started)
    return result


def solid_facts(solid: Any) -> dict[str, Any]:
    """Volume, area and bounding box in millimetres, and the mesh's shape."""
    low, high = (solid.bbox * MM_PER_M).tolist()
    return {
        "volume_mm3": float(solid.volume) * MM_PER_M**3,
        "area_mm2": float(solid.area) * MM_PER_M**2,
        "bbox_mm": {
            "min": low,
            "max": high,
            "size": [h - lo for lo, h in zip(low, high, strict=True)],
        },
        "vertices": len(solid.vertices),
        "triangles": len(solid.faces),
        "watertight": bool(solid.watertight),
        "solids": int(solid.num_solids),
    }


def write_meshes(solid: Any, out_dir: Path, stem: str) -> dict[str, str]:
    """``<stem>.stl`` (binary) and ``<stem>.glb`` in millimetres; their file names."""
    import trimesh

    from stages.atomic import write_bytes_atomic

    mesh = trimesh.Trimesh(
        vertices=solid.vertices * MM_PER_M, faces=solid.faces, process=False, validate=False
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    names = {}
    for kind in MESH_FORMATS:
        path = out_dir / f"{stem}.{kind}"
        write_bytes_atomic(path, mesh.export(file_type=kind), durable=False)
        names[kind] = path.name
    return names


def _error(stage: str, exc: CadError) -> dict[str, str]:
    return {"stage": stage, "reason": exc.reason, "detail": exc.detail or str(exc)}


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 4)
