"""DeepCAD ``cad_json`` to immutable CadModel values.

Follows ``shared/notes/deepcad.md``: walk ``sequence`` by index, keep only profiles an extrude
references, split multi-profile extrudes (the first keeps its operation; after a NewBody the
rest are Joins), chain loop curves head to tail, and read each arc's counter-clockwise start
from its reference vector (it is sometimes ``end_point``). Extrudes without profiles make
nothing and are dropped, so a model whose extrudes are all empty parses to no extrudes (the
builder then reports ``no_geometry``). Anything unusable raises ``CadError`` with a short
reason: ``bad_json``, ``too_large``, ``too_complex``, ``open_loop``, ``unsupported_curve``,
``unsupported_feature``, ``degenerate``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from stages.cad.chain import chain_loop
from stages.cad.model import (
    Arc,
    CadError,
    CadModel,
    Circle,
    Curve,
    ExtentType,
    Extrude,
    Line,
    Loop,
    Operation,
    Profile,
    SketchPlane,
    Vec2,
    Vec3,
)

# Real DeepCAD files are at most a few hundred kilobytes; anything far bigger is not one.
MAX_FILE_BYTES = 8 * 1024 * 1024
# Endpoints closer than this fraction of the model's largest sketch span are the same point.
CHAIN_TOLERANCE = 1e-6
# Chaining is quadratic in a loop's curves; no buildable loop has more (see the caps in
# ``stages.cad.solid.build``).
MAX_LOOP_CURVES = 5_000

OPERATIONS = {
    "NewBodyFeatureOperation": Operation.NEW_BODY,
    "JoinFeatureOperation": Operation.JOIN,
    "CutFeatureOperation": Operation.CUT,
    "IntersectFeatureOperation": Operation.INTERSECT,
}
EXTENT_TYPES = {
    "OneSideFeatureExtentType": ExtentType.ONE_SIDE,
    "SymmetricFeatureExtentType": ExtentType.SYMMETRIC,
    "TwoSidesFeatureExtentType": ExtentType.TWO_SIDES,
}


def load_deepcad(path: str | Path) -> CadModel:
    """Read and parse one ``cad_json`` file; the model id is the file stem."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise CadError("bad_json", f"cannot read {path.name}: {exc.strerror or exc}") from exc
    if len(raw) > MAX_FILE_BYTES:
        raise CadError("too_large", f"{path.name} is over {MAX_FILE_BYTES} bytes")
    try:
        data = json.loads(raw.decode("utf-8-sig"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CadError("bad_json", f"{path.name}: {exc}") from exc
    return parse_deepcad(data, path.stem)


def parse_deepcad(data: dict, model_id: str) -> CadModel:
    """Turn a loaded ``cad_json`` object into a CadModel (extrudes in sequence order)."""
    entities = _field(data, "entities", Mapping, "top level")
    sequence = _field(data, "sequence", list, "top level")
    features = [_sketch_refs(entities, ref) for ref in _extrude_entities(entities, sequence)]
    raw_profiles = [[_read_profile(entities, r) for r in refs] for _, refs in features]
    tol = CHAIN_TOLERANCE * _sketch_span(raw_profiles)
    extrudes: list[Extrude] = []
    for (entity, refs), profiles in zip(features, raw_profiles, strict=True):
        operation = _operation(entity)
        extent_type, extent_one, extent_two = _extent(entity)
        for position, (ref, raw_loops) in enumerate(zip(refs, profiles, strict=True)):
            profile = Profile(tuple(Loop(chain_loop(loop, tol)) for loop in raw_loops))
            extrudes.append(
                Extrude(
                    plane=_plane(entities, ref),
                    profile=profile,
                    operation=_split_operation(operation, position),
                    extent_type=extent_type,
                    extent_one=extent_one,
                    extent_two=extent_two,
                )
            )
    return CadModel(id=model_id, extrudes=tuple(extrudes))


# -- sequence and features ------------------------------------------------------------------


def _extrude_entities(entities: Mapping, sequence: list) -> Iterator[Mapping]:
    """ExtrudeFeature entities in ``index`` order; other feature types are not geometry."""
    items = []
    for item in sequence:
        if not isinstance(item, Mapping):
            raise CadError("bad_json", "sequence item is not an object")
        items.append((_number(item, "index", "sequence item"), item))
    for _, item in sorted(items, key=lambda pair: pair[0]):
        if item.get("type") != "ExtrudeFeature":
            continue
        entity_id = item.get("entity")
        entity = entities.get(entity_id) if isinstance(entity_id, str) else None
        if not isinstance(entity, Mapping):
            raise CadError("bad_json", f"sequence names missing entity {entity_id!r}")
        yield entity


def _sketch_refs(entities: Mapping, extrude: Mapping) -> tuple[Mapping, list[tuple[str, str]]]:
    """An extrude and its (sketch id, profile id) pairs, in the file's order."""
    refs = []
    for ref in _field(extrude, "profiles", list, "extrude"):
        sketch_id = _field(ref, "sketch", str, "extrude profile")
        profile_id = _field(ref, "profile", str, "extrude profile")
        refs.append((sketch_id, profile_id))
    return extrude, refs


def _operation(extrude: Mapping) -> Operation:
    name = _field(extrude, "operation", str, "extrude")
    if name not in OPERATIONS:
        raise CadError("unsupported_feature", f"operation {name!r}")
    return OPERATIONS[name]


def _split_operation(operation: Operation, position: int) -> Operation:
    """DeepCAD's rule for the profiles after the first of one extrude."""
    if position > 0 and operation == Operation.NEW_BODY:
        return Operation.JOIN
    return operation


def _extent(extrude: Mapping) -> tuple[ExtentType, float, float]:
    name = _field(extrude, "extent_type", str, "extrude")
    if name not in EXTENT_TYPES:
        raise CadError("unsupported_feature", f"extent type {name!r}")
    start = extrude.get("start_extent")
    if isinstance(start, Mapping) and start.get("type", "ProfilePlaneStartDefinition") != (
        "ProfilePlaneStartDefinition"
    ):
        raise CadError("unsupported_feature", f"start extent {start.get('type')!r}")
    extent_type = EXTENT_TYPES[name]
    extent_one = _distance(extrude, "extent_one")
    extent_two = _distance(extrude, "extent_two") if extent_type == ExtentType.TWO_SIDES else 0.0
    return extent_type, extent_one, extent_two


def _distance(extrude: Mapping, key: str) -> float:
    extent = _field(extrude, key, Mapping, "extrude")
    taper = extent.get("taper_angle")
    if isinstance(taper, Mapping) and _number(taper, "value", key) != 0.0:
        raise CadError("unsupported_feature", f"{key} has a taper angle")
    return _number(_field(extent, "distance", Mapping, key), "value", key)


# -- sketches ---------------------------------------------------------------------------------


def _sketch(entities: Mapping, sketch_id: str) -> Mapping:
    sketch = entities.get(sketch_id)
    if not isinstance(sketch, Mapping) or sketch.get("type") != "Sketch":
        raise CadError("bad_json", f"extrude references missing sketch {sketch_id!r}")
    return sketch


def _plane(entities: Mapping, ref: tuple[str, str]) -> SketchPlane:
    """The sketch's frame; ``y = z cross x`` as DeepCAD defines it (the file's y is ignored)."""
    transform = _field(_sketch(entities, ref[0]), "transform", Mapping, "sketch")
    origin = _point3(transform, "origin")
    x_axis = _point3(transform, "x_axis")
    normal = _point3(transform, "z_axis")
    y_axis = (
        normal[1] * x_axis[2] - normal[2] * x_axis[1],
        normal[2] * x_axis[0] - normal[0] * x_axis[2],
        normal[0] * x_axis[1] - normal[1] * x_axis[0],
    )
    return SketchPlane(origin=origin, x_axis=x_axis, y_axis=y_axis, normal=normal)


def _read_profile(entities: Mapping, ref: tuple[str, str]) -> list[list[Curve]]:
    """The profile's loops as unchained curves (chaining needs the whole model's size)."""
    profiles = _field(_sketch(entities, ref[0]), "profiles", Mapping, "sketch")
    profile = profiles.get(ref[1])
    if not isinstance(profile, Mapping):
        raise CadError("bad_json", f"sketch {ref[0]!r} has no profile {ref[1]!r}")
    loops = _field(profile, "loops", list, "profile")
    if not loops:
        raise CadError("degenerate", f"profile {ref[1]!r} has no loops")
    result = []
    for loop in loops:
        curves = _field(loop, "profile_curves", list, "loop")
        if len(curves) > MAX_LOOP_CURVES:
            raise CadError("too_complex", f"a loop has {len(curves)} curves")
        result.append([_curve(c) for c in curves])
    return result


def _curve(data: Any) -> Curve:
    if not isinstance(data, Mapping):
        raise CadError("bad_json", "curve is not an object")
    kind = data.get("type")
    if kind == "Line3D":
        return Line(_point2(data, "start_point"), _point2(data, "end_point"))
    if kind == "Circle3D":
        return Circle(_point2(data, "center_point"), _radius(data))
    if kind == "Arc3D":
        return _arc(data)
    raise CadError("unsupported_curve", f"curve type {kind!r}")


def _arc(data: Mapping) -> Arc:
    """An arc from the file's start point to its end point, with the sweep signed.

    The arc runs counter-clockwise by ``end_angle - start_angle`` from the angle of
    ``reference_vector``; whichever stored endpoint lies nearer that start is where the
    counter-clockwise run begins (the file has it both ways).
    """
    center = _point2(data, "center_point")
    radius = _radius(data)
    start_angle = _number(data, "start_angle", "arc")
    sweep = _number(data, "end_angle", "arc") - start_angle
    reference = _point2(data, "reference_vector")
    if reference == (0.0, 0.0):
        raise CadError("degenerate", "arc reference vector is zero")
    a0 = math.atan2(reference[1], reference[0]) + start_angle
    ccw_start = (center[0] + radius * math.cos(a0), center[1] + radius * math.sin(a0))
    start = _point2(data, "start_point")
    end = _point2(data, "end_point")
    if math.dist(start, ccw_start) <= math.dist(end, ccw_start):
        return Arc(start, end, center, radius, sweep, reference)
    return Arc(start, end, center, radius, -sweep, reference)


def _radius(data: Mapping) -> float:
    radius = _number(data, "radius", str(data.get("type")))
    if radius <= 0.0:
        raise CadError("degenerate", f"{data.get('type')} radius {radius}")
    return radius


def _sketch_span(profiles: list[list[list[list[Curve]]]]) -> float:
    """Largest extent of any referenced profile, the length every tolerance scales with."""
    span = 0.0
    for feature in profiles:
        for loops in feature:
            xs: list[float] = []
            ys: list[float] = []
            for curve in (c for loop in loops for c in loop):
                for x, y in _extreme_points(curve):
                    xs.append(x)
                    ys.append(y)
            if xs:
                span = max(span, math.hypot(max(xs) - min(xs), max(ys) - min(ys)))
    return span


def _extreme_points(curve: Curve) -> list[Vec2]:
    if isinstance(curve, Line):
        return [curve.start, curve.end]
    (cx, cy), r = curve.center, curve.radius
    return [(cx - r, cy - r), (cx + r, cy + r)]


# -- field access -----------------------------------------------------------------------------


def _reject_constant(name: str) -> float:
    raise ValueError(f"non-finite number {name} is not JSON")


def _field(obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, Mapping):
        raise CadError("bad_json", f"{where} is not an object")
    value = obj.get(key)
    if not isinstance(value, kind):
        raise CadError("bad_json", f"{where}: {key!r} missing or of the wrong type")
    return value


def _number(obj: Any, key: str, where: str) -> float:
    value = _field(obj, key, (int, float), where)
    if isinstance(value, bool) or not math.isfinite(value):
        raise CadError("bad_json", f"{where}: {key!r} is not a finite number")
    return float(value)


def _point2(obj: Mapping, key: str) -> Vec2:
    point = _field(obj, key, Mapping, "curve")
    return (_number(point, "x", key), _number(point, "y", key))


def _point3(obj: Mapping, key: str) -> Vec3:
    point = _field(obj, key, Mapping, "transform")
    return (_number(point, "x", key), _number(point, "y", key), _number(point, "z", key))
