"""Generated OpenECAD code scored against a reference, as image-to-CAD papers report it.

Per pair: ``invalid`` (the generated code does not parse or does not build a solid), volume
IoU of the two solids from exact mesh booleans (manifold3d), Chamfer distance on 8,192
surface points per shape with the reference normalised to the unit cube (squared
nearest-neighbour distances averaged each way and summed, times 1000, as cadrille,
CAD-Recode and CADEvolve report it), and OpenECAD's count-based accuracies: whether the
generated program has as many curves of each kind (lines, arcs, circles) and as many loops
as the reference. Over a set: the invalid ratio and the mean and median of each metric (IoU
and Chamfer over the valid pairs; papers quote the median Chamfer).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from stages.cad.model import Arc, CadError, CadModel, Circle, Line
from stages.cad.openecad.answer import unwrap_answer
from stages.cad.openecad.interpreter import parse_code
from stages.cad.solid import BUILD_TIME_LIMIT_S, Solid, build_solid

CHAMFER_POINTS = 8192
CHAMFER_SCALE = 1000.0
METRICS = ("iou", "chamfer", "curve_accuracy", "loop_accuracy")


def score_code(
    generated: str, reference: str, *, points: int = CHAMFER_POINTS, seed: int = 0
) -> dict[str, Any]:
    """Scores of ``generated`` against ``reference`` (code, or answers with the code fenced).

    A reference that does not parse or build raises CadError: it is the caller's mistake.
    """
    reference_model = parse_code(unwrap_answer(reference), "reference")
    reference_solid = build_solid(reference_model, time_limit=BUILD_TIME_LIMIT_S)
    reference_counts = shape_counts(reference_model)
    result: dict[str, Any] = {
        "invalid": True,
        "error": None,
        "iou": None,
        "chamfer": None,
        "curve_accuracy": 0.0,
        "loop_accuracy": 0.0,
        "counts": {"reference": reference_counts, "generated": None},
    }
    try:
        generated_model = parse_code(unwrap_answer(generated), "generated")
    except CadError as exc:
        result["error"] = str(exc)
        return result
    generated_counts = shape_counts(generated_model)
    result["counts"]["generated"] = generated_counts
    result["curve_accuracy"] = float(
        all(generated_counts[k] == reference_counts[k] for k in ("lines", "arcs", "circles"))
    )
    result["loop_accuracy"] = float(generated_counts["loops"] == reference_counts["loops"])
    try:
        generated_solid = build_solid(generated_model, time_limit=BUILD_TIME_LIMIT_S)
    except CadError as exc:
        result["error"] = str(exc)
        return result
    result["invalid"] = False
    result["iou"] = volume_iou(generated_solid, reference_solid)
    result["chamfer"] = chamfer_distance(generated_solid, reference_solid, points, seed)
    return result


def summarize(scores: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Invalid ratio and mean/median of each metric over a set of ``score_code`` results."""
    summary: dict[str, Any] = {
        "count": len(scores),
        "invalid_ratio": (sum(bool(s["invalid"]) for s in scores) / len(scores))
        if scores
        else None,
    }
    for metric in METRICS:
        values = [float(s[metric]) for s in scores if s.get(metric) is not None]
        summary[metric] = {
            "mean": statistics.fmean(values) if values else None,
            "median": statistics.median(values) if values else None,
            "count": len(values),
        }
    return summary


def shape_counts(model: CadModel) -> dict[str, int]:
    """Curves by kind, loops and extrudes of a model (OpenECAD's count-based accuracies)."""
    counts = {"lines": 0, "arcs": 0, "circles": 0, "loops": 0, "extrudes": len(model.extrudes)}
    kinds = {Line: "lines", Arc: "arcs", Circle: "circles"}
    for extrude in model.extrudes:
        counts["loops"] += len(extrude.profile.loops)
        for loop in extrude.profile.loops:
            for curve in loop.curves:
                counts[kinds[type(curve)]] += 1
    return counts


def volume_iou(a: Solid, b: Solid) -> float:
    """Intersection over union of two solids' volumes, from an exact mesh boolean."""
    common = float((a.manifold ^ b.manifold).volume())
    union = a.volume + b.volume - common
    return common / union if union > 0.0 else 0.0


def chamfer_distance(
    generated: Solid, reference: Solid, points: int = CHAMFER_POINTS, seed: int = 0
) -> float:
    """Symmetric Chamfer distance x1000 between surface samples, in the frame that scales the
    reference's bounding box into the unit cube (applied to both shapes)."""
    low, high = reference.bbox
    size = float(np.max(high - low))
    if size <= 0.0:
        raise CadError("degenerate", "reference solid has no extent")
    a = (_surface_points(generated, points, seed) - low) / size
    b = (_surface_points(reference, points, seed) - low) / size
    a_to_b = cKDTree(b).query(a)[0]
    b_to_a = cKDTree(a).query(b)[0]
    return float((np.mean(a_to_b**2) + np.mean(b_to_a**2)) * CHAMFER_SCALE)


def _surface_points(solid: Solid, count: int, seed: int) -> np.ndarray:
    mesh = trimesh.Trimesh(vertices=solid.vertices, faces=solid.faces, process=False)
    samples, _ = trimesh.sample.sample_surface(mesh, count, seed=seed)
    return np.asarray(samples, dtype=np.float64)
