"""Write a ``Design`` as a DeepCAD ``cad_json`` dict, with the format's legal quirks.

The schema follows the real files field for field (see ``shared/notes/deepcad.md``): Onshape-like
entity ids, sketches with ``transform`` and ``profiles``/``loops``/``profile_curves``, Line3D,
Arc3D (sweep as ``end_angle`` from a ``reference_vector``) and Circle3D, ExtrudeFeature with
distance extents, and the part's bounding box. Quirks are drawn from the random source: curves
out of order and reversed, outer loops not first, arcs whose counter-clockwise start is stored as
``end_point``, flipped curve normals, unused sketches and a first extrude that is not a NewBody.
"""

from __future__ import annotations

import math
import random
import string
from typing import Any

from stages.cad.model import (
    Arc,
    Circle,
    Curve,
    ExtentType,
    Line,
    Operation,
    Profile,
    SketchPlane,
    Vec3,
)
from stages.cad.synth.design import Design, FeatureSpec, SketchSpec, extent_range, loop_box
from stages.cad.synth.shapes import ZERO, affine

OPERATION_NAMES = {
    Operation.NEW_BODY: "NewBodyFeatureOperation",
    Operation.JOIN: "JoinFeatureOperation",
    Operation.CUT: "CutFeatureOperation",
    Operation.INTERSECT: "IntersectFeatureOperation",
}
EXTENT_NAMES = {
    ExtentType.ONE_SIDE: "OneSideFeatureExtentType",
    ExtentType.SYMMETRIC: "SymmetricFeatureExtentType",
    ExtentType.TWO_SIDES: "TwoSidesFeatureExtentType",
}
ID_ALPHABET = string.ascii_letters + string.digits
# Onshape's profile and curve ids inside a sketch look like "JGC", "JGK", "JGB", "JGN".
SKETCH_LETTERS = "GJNRVZdhlptx"
PROFILE_LETTERS = "CGKOSWaeimquy"
CURVE_LETTERS = "BFJNRVZdhlptx159"


def point(u: float, v: float, w: float = 0.0) -> dict[str, float]:
    """A DeepCAD point; real files list the keys y, x, z."""
    return {"y": float(v), "x": float(u), "z": float(w)}


def vector(v: Vec3) -> dict[str, float]:
    return {"y": float(v[1]), "x": float(v[0]), "z": float(v[2])}


class _Ids:
    """Entity, profile and curve ids in the style of Onshape's exports."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.suffixed = rng.random() < 0.6
        self.count = 0

    def entity(self) -> str:
        name = "F" + "".join(self.rng.choice(ID_ALPHABET) for _ in range(14))
        if self.suffixed:
            name += "_0" if self.count < 2 else "_1"
        self.count += 1
        return name

    @staticmethod
    def local(prefix: str, letters: str, index: int) -> str:
        if index < len(letters):
            return prefix + letters[index]
        return prefix + letters[index // len(letters) - 1] + letters[index % len(letters)]


def design_to_json(design: Design, rng: random.Random, rates: dict[str, float]) -> dict[str, Any]:
    """The DeepCAD JSON of ``design``; ``rates`` are the probabilities of each quirk."""
    ids = _Ids(rng)
    sketch_ids: dict[int, str] = {}  # in order of first use, as Onshape numbers them
    entities: dict[str, Any] = {}
    sequence: list[str] = []
    for number, feature in enumerate(design.features, start=1):
        if feature.sketch not in sketch_ids:
            sketch_ids[feature.sketch] = ids.entity()
            sketch = design.sketches[feature.sketch]
            entities[sketch_ids[feature.sketch]] = _sketch(
                sketch, len(sketch_ids), feature.sketch, rng, rates
            )
            sequence.append(sketch_ids[feature.sketch])
        extrude_id = ids.entity()
        profiles = [
            {
                "profile": _Ids.local(_prefix(feature.sketch), PROFILE_LETTERS, i),
                "sketch": sketch_ids[feature.sketch],
            }
            for i in feature.profiles
        ]
        operation = feature.operation
        if (
            number == 1
            and operation == Operation.NEW_BODY
            and rng.random() < rates.get("first_join", 0.0)
        ):
            operation = Operation.JOIN
        entities[extrude_id] = _extrude(f"Extrude {number}", profiles, operation, feature)
        sequence.append(extrude_id)
    if design.sketches and rng.random() < rates.get("unused_sketch", 0.0):
        spare = _unused_sketch(design, rng)
        spare_id = ids.entity()
        entities[spare_id] = _sketch(spare, len(sketch_ids) + 1, len(design.sketches), rng, rates)
        sequence.insert(rng.randint(1, len(sequence)), spare_id)
    order = list(entities)
    rng.shuffle(order)
    return {
        "entities": {key: entities[key] for key in order},
        "properties": {"bounding_box": _bounding_box(design)},
        "sequence": [
            {"index": i, "type": entities[key]["type"], "entity": key}
            for i, key in enumerate(sequence)
        ],
    }


def _prefix(sketch_index: int) -> str:
    return _Ids.local("J", SKETCH_LETTERS, sketch_index)


def _sketch(
    sketch: SketchSpec, number: int, index: int, rng: random.Random, rates: dict[str, float]
) -> dict[str, Any]:
    prefix = _prefix(index)
    curve_count = 0
    profiles: dict[str, Any] = {}
    for i, profile in enumerate(sketch.profiles):
        loops = []
        for loop in profile.loops:
            curves = []
            for curve in loop.curves:
                curve_id = _Ids.local(prefix, CURVE_LETTERS, curve_count)
                curve_count += 1
                curves.append(_curve(curve, curve_id, sketch.plane, rng, rates))
            _shuffle_curves(curves, rng, rates.get("shuffle_curves", 0.0))
            loops.append({"is_outer": True, "profile_curves": curves})
        if len(loops) > 1 and rng.random() < rates.get("outer_not_first", 0.0):
            loops.append(loops.pop(0))
        profiles[_Ids.local(prefix, PROFILE_LETTERS, i)] = {"loops": loops, "properties": {}}
    p = sketch.plane
    return {
        "transform": {
            "origin": vector(p.origin),
            "y_axis": vector(p.y_axis),
            "x_axis": vector(p.x_axis),
            "z_axis": vector(p.normal),
        },
        "type": "Sketch",
        "name": f"Sketch {number}",
        "profiles": profiles,
        "reference_plane": {},
    }


def _shuffle_curves(curves: list[dict[str, Any]], rng: random.Random, rate: float) -> None:
    """Real loops are often rotated or fully unordered (readers must chain them)."""
    if len(curves) < 2 or rng.random() >= rate:
        return
    if rng.random() < 0.5:
        turn = rng.randrange(len(curves))
        curves[:] = curves[turn:] + curves[:turn]
    else:
        rng.shuffle(curves)


def _curve(
    curve: Curve, curve_id: str, plane: SketchPlane, rng: random.Random, rates: dict[str, float]
) -> dict[str, Any]:
    flip_normal = rng.random() < rates.get("flip_curve_normal", 0.0)
    normal = affine(ZERO, (-1.0, plane.normal)) if flip_normal else plane.normal
    if isinstance(curve, Line):
        start, end = curve.start, curve.end
        if rng.random() < rates.get("reverse_lines", 0.0):
            start, end = end, start
        return {
            "type": "Line3D",
            "start_point": point(*start),
            "curve": curve_id,
            "end_point": point(*end),
        }
    if isinstance(curve, Circle):
        return {
            "center_point": point(*curve.center),
            "type": "Circle3D",
            "radius": float(curve.radius),
            "curve": curve_id,
            "normal": vector(normal),
        }
    return _arc(curve, curve_id, normal, rng.random() < rates.get("arc_end_start", 0.0))


def _arc(arc: Arc, curve_id: str, normal: Vec3, swap: bool) -> dict[str, Any]:
    """DeepCAD's arc: swept counter-clockwise by ``end_angle`` from ``reference_vector``.

    The counter-clockwise start is stored as ``start_point`` or, when ``swap``, ``end_point``.
    """
    ccw_start, ccw_end = (arc.start, arc.end) if arc.sweep > 0 else (arc.end, arc.start)
    rx = (ccw_start[0] - arc.center[0]) / arc.radius
    ry = (ccw_start[1] - arc.center[1]) / arc.radius
    length = math.hypot(rx, ry)
    first, second = (ccw_end, ccw_start) if swap else (ccw_start, ccw_end)
    return {
        "center_point": point(*arc.center),
        "normal": vector(normal),
        "end_point": point(*second),
        "start_angle": 0.0,
        "curve": curve_id,
        "end_angle": float(abs(arc.sweep)),
        "radius": float(arc.radius),
        "type": "Arc3D",
        "start_point": point(*first),
        "reference_vector": point(rx / length, ry / length),
    }


def _extrude(
    name: str, profiles: list[dict[str, str]], operation: Operation, feature: FeatureSpec
) -> dict[str, Any]:
    two = feature.extent_two if feature.extent_type == ExtentType.TWO_SIDES else 0.0
    return {
        "name": name,
        "type": "ExtrudeFeature",
        "profiles": profiles,
        "extent_two": _extent("AgainstDistance", "Side2TaperAngle", two),
        "extent_one": _extent("AlongDistance", "TaperAngle", feature.extent_one),
        "operation": OPERATION_NAMES[operation],
        "start_extent": {"type": "ProfilePlaneStartDefinition"},
        "extent_type": EXTENT_NAMES[feature.extent_type],
    }


def _extent(role: str, taper_role: str, value: float) -> dict[str, Any]:
    return {
        "distance": {"type": "ModelParameter", "role": role, "name": "none", "value": float(value)},
        "type": "DistanceExtentDefinition",
        "taper_angle": {"type": "ModelParameter", "role": taper_role, "name": "none", "value": 0.0},
    }


def _unused_sketch(design: Design, rng: random.Random) -> SketchSpec:
    """A sketch a designer drew and never extruded: some profiles of a used one, moved."""
    source = rng.choice(design.sketches)
    keep = rng.sample(list(source.profiles), k=max(1, len(source.profiles) // 2))
    p = source.plane
    move = rng.uniform(0.5, 2.0) * max(_profile_span(keep), 1e-3)
    origin = affine(p.origin, (move, p.normal))
    return SketchSpec(SketchPlane(origin, p.x_axis, p.y_axis, p.normal), tuple(keep))


def _profile_span(profiles: list[Profile]) -> float:
    boxes = [loop_box(loop) for profile in profiles for loop in profile.loops]
    return max(max(b[2] - b[0], b[3] - b[1]) for b in boxes)


def _bounding_box(design: Design) -> dict[str, Any]:
    """The box of the added material (NewBody/Join prisms, clipped by Intersects).

    Like Onshape's box it is only framing metadata; cuts are not subtracted.
    """
    low = [math.inf] * 3
    high = [-math.inf] * 3
    for feature in design.features:
        sketch = design.sketches[feature.sketch]
        box_low, box_high = [math.inf] * 3, [-math.inf] * 3
        w0, w1 = extent_range(feature.extent_type, feature.extent_one, feature.extent_two)
        for index in feature.profiles:
            for loop in sketch.profiles[index].loops:
                u0, v0, u1, v1 = loop_box(loop)
                for u in (u0, u1):
                    for v in (v0, v1):
                        for w in (w0, w1):
                            p = sketch.plane
                            world = affine(p.origin, (u, p.x_axis), (v, p.y_axis), (w, p.normal))
                            for i in range(3):
                                box_low[i] = min(box_low[i], world[i])
                                box_high[i] = max(box_high[i], world[i])
        if feature.operation == Operation.INTERSECT and math.isfinite(low[0]):
            low = [max(a, b) for a, b in zip(low, box_low, strict=True)]
            high = [min(a, b) for a, b in zip(high, box_high, strict=True)]
        elif feature.operation != Operation.CUT:
            low = [min(a, b) for a, b in zip(low, box_low, strict=True)]
            high = [max(a, b) for a, b in zip(high, box_high, strict=True)]
    if not math.isfinite(low[0]):
        low = high = [0.0, 0.0, 0.0]
    return {
        "max_point": vector((high[0], high[1], high[2])),
        "type": "BoundingBox3D",
        "min_point": vector((low[0], low[1], low[2])),
    }
