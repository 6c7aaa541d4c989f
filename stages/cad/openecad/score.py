"""Generated OpenECAD code scored against a reference, as image-to-CAD papers report it.

The geometric metrics follow the evaluation code of cadrille, CAD-Recode and CADEvolve.
Each solid, the generated one and the reference alike, is normalised on its own: translated
so that the centre of its axis-aligned bounding box is at the origin, scaled by 1 / (the
largest extent of that box; no scaling when it is below 1e-7), then translated by
(0.5, 0.5, 0.5), so that every shape's bounding box fits the unit cube [0, 1]^3 centred at
(0.5, 0.5, 0.5). Neither shape is placed in the other's frame: a shift or a uniform scale of
a shape changes nothing.

Per pair:

- ``invalid``: the generated code does not parse or does not build a solid;
- ``iou``: volume of the intersection over volume of the union of the two normalised
  solids, from an exact mesh boolean (manifold3d; the papers use trimesh's booleans);
- ``chamfer``: 8,192 points (``CHAMFER_POINTS``) drawn uniformly by area on each normalised
  triangle surface (``trimesh.sample.sample_surface``, seeded, the same seed for both
  shapes), each point's Euclidean distance to the nearest point of the other set (scipy
  cKDTree), and ``mean(d_generated->reference ** 2) + mean(d_reference->generated ** 2)``:
  squared distances, a mean each way, summed (not halved), times 1000 (``CHAMFER_SCALE``);
- OpenECAD's count-based accuracies: whether the generated program has as many curves of
  each kind (lines, arcs, circles) and as many loops as the reference.

Over a set (``summarize``): the invalid ratio (pairs whose code does not parse or build,
over all pairs) and the mean and median of each metric, IoU and Chamfer over the valid
pairs only. The papers quote the median Chamfer (x1000) and the mean IoU.
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
MIN_EXTENT = 1e-7  # below it a shape is centred but not scaled, as the papers' code does
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
    """Intersection over union of the volumes of the two normalised solids (exact boolean)."""
    a_unit, b_unit = _normalised_manifold(a), _normalised_manifold(b)
    common = float((a_unit ^ b_unit).volume())
    union = float(a_unit.volume()) + float(b_unit.volume()) - common
    return common / union if union > 0.0 else 0.0


def chamfer_distance(
    generated: Solid, reference: Solid, points: int = CHAMFER_POINTS, seed: int = 0
) -> float:
    """Chamfer distance x1000 between ``points`` surface samples of each normalised solid:
    the mean squared nearest-neighbour distance each way, summed."""
    a = _surface_points(generated, points, seed)
    b = _surface_points(reference, points, seed)
    a_to_b = cKDTree(b).query(a)[0]
    b_to_a = cKDTree(a).query(b)[0]
    return float((np.mean(a_to_b**2) + np.mean(b_to_a**2)) * CHAMFER_SCALE)


def normalisation(solid: Solid) -> tuple[np.ndarray, float]:
    """The bounding-box centre and the scale that put ``solid`` in the unit cube: a point p
    goes to ``(p - centre) * scale + 0.5``."""
    low, high = (np.asarray(c, dtype=np.float64) for c in solid.bbox)
    extent = float(np.max(high - low))
    return (low + high) / 2.0, (1.0 / extent if extent > MIN_EXTENT else 1.0)


def _normalised_manifold(solid: Solid) -> Any:
    centre, scale = normalisation(solid)
    moved = solid.manifold.translate(tuple(-centre)).scale((scale, scale, scale))
    return moved.translate((0.5, 0.5, 0.5))


def _surface_points(solid: Solid, count: int, seed: int) -> np.ndarray:
    """``count`` points uniform by area on the normalised surface of ``solid``."""
    centre, scale = normalisation(solid)
    vertices = (np.asarray(solid.vertices, dtype=np.float64) - centre) * scale + 0.5
    mesh = trimesh.Trimesh(vertices=vertices, faces=solid.faces, process=False)
    samples, _ = trimesh.sample.sample_surface(mesh, count, seed=seed)
    return np.asarray(samples, dtype=np.float64)
