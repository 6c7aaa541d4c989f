"""CadModel to an exact-as-DeepCAD triangle solid with manifold3d.

DeepCAD's semantics (``shared/notes/deepcad.md``): extrudes apply strictly in order, one
profile each; the first becomes the body whatever its operation; NewBody and Join fuse, Cut
subtracts, Intersect keeps the common part; disjoint bodies are legitimate. Every tolerance is
a share of the model's bounding-box diagonal, because parts range from 3.5 mm washers to
1.5 m rods. Sketch polygons are built in units scaled to the diagonal (manifold3d's 2D
kernel rounds to 1e-8) and mapped into the sketch plane in metres.

Faces that an exact kernel sees as one often differ by floating-point rounding (a join
sketched at z = -0.025 on a body ending at z = -0.02500000000000001), and manifold3d, which
fuses only exactly coincident faces, would keep the two bodies apart. So every coordinate
along a sketch axis that is a world axis is snapped, as a world coordinate, to a power-of-two
grid of about 1e-9 of the diagonal; the placement then adds and scales only grid multiples,
so faces that coincide up to rounding come out exactly coincident.

manifold3d evaluates without releasing Python's lock, so a running boolean cannot be
interrupted: the cost is capped before building (extrude and polygon-vertex counts) and the
time limit is checked after every boolean.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import manifold3d
import numpy as np

from stages.cad.limits import BUILD_TIME_LIMIT_S
from stages.cad.model import (
    Arc,
    CadError,
    CadModel,
    Circle,
    ExtentType,
    Extrude,
    Line,
    Operation,
    Profile,
    SketchPlane,
)
from stages.cad.solid.bodies import Bodies, count_solids, cut, fuse, intersect
from stages.cad.solid.mesh import edge_topology, face_normals, feature_edges
from stages.cad.solid.sections import estimate_vertices, loop_points, profile_section

CHORD_TOLERANCE = 5e-4  # largest arc sagitta, as a share of the diagonal
LENGTH_SHARE = 1e-7  # shorter than this share of the diagonal is zero
AREA_SHARE = 1e-10  # less than this share of the squared diagonal is no area
# Bodies sharing less face area than this share of the squared diagonal only touch (the
# union's area carries rounding noise of about 1e-9 of the total).
CONTACT_AREA_SHARE = 1e-6
VOLUME_SHARE = 1e-12  # smaller than this share of the cubed diagonal is empty
AXIS_TOLERANCE = 1e-3  # how far a sketch frame may be from orthonormal
AXIS_NOISE = 1e-12  # a unit axis component this small is rounding noise (the axis is a world axis)
# The snap grid in sketch units: the coarsest power of two that lies on manifold3d's 1e-8 grid
# (2**-8 = 390625e-8), so its 2D kernel keeps snapped coordinates exactly.
SNAP_UNITS = 2.0**-8
# Caps that bound one build to a few seconds on one core (measured: triangulating a profile
# grows about quadratically with its holes and vertices; 5,000 vertices take up to 0.5 s).
MAX_EXTRUDES = 100
MAX_PROFILE_LOOPS = 100
MAX_PROFILE_VERTICES = 5_000
MAX_MODEL_VERTICES = 20_000


@dataclass(frozen=True, slots=True, eq=False)
class Solid:
    """A built model: a closed triangle mesh in metres and its measures.

    ``face_normals`` and ``feature_edges`` are only for drawing: a solid built with
    ``mesh_extras=False`` has them empty ((0, 3) and (0, 2)); every other field, and so
    ``geometric_key``, is the same either way.
    """

    vertices: np.ndarray  # (N, 3) float64
    faces: np.ndarray  # (M, 3) int32, counter-clockwise seen from outside
    face_normals: np.ndarray  # (M, 3) float64 unit outward normals; (0, 3) without mesh extras
    feature_edges: np.ndarray  # (K, 2) int32 vertex pairs where the surface creases
    volume: float
    area: float
    bbox: np.ndarray  # (2, 3): min corner, max corner
    num_solids: int
    watertight: bool
    manifold: manifold3d.Manifold  # for exact booleans (IoU) by other stages


@dataclass(frozen=True, slots=True, eq=False)
class _Frame:
    origin: np.ndarray
    x_axis: np.ndarray
    y_axis: np.ndarray
    normal: np.ndarray
    along: tuple[int, int, int]  # the world axis that x, y and the normal each lie on, or -1


def build_solid(
    model: CadModel, *, time_limit: float = BUILD_TIME_LIMIT_S, mesh_extras: bool = True
) -> Solid:
    """Build ``model``'s solid; raises CadError (``no_geometry``, ``too_complex``,
    ``degenerate``, ``self_intersecting``, ``empty_solid``, ``build_failed``, ``timeout``).

    ``mesh_extras=False`` skips what only drawing needs (face normals, feature edges): for
    callers that want the measures, watertightness or the geometric key, it is the same solid,
    a little sooner."""
    deadline = time.monotonic() + time_limit
    if not model.extrudes:
        raise CadError("no_geometry", "model has no extrude with a profile")
    if len(model.extrudes) > MAX_EXTRUDES:
        raise CadError("too_complex", f"{len(model.extrudes)} extrudes (limit {MAX_EXTRUDES})")
    frames = [_frame(e.plane) for e in model.extrudes]
    spans = [_extent_span(e) for e in model.extrudes]
    bounds = [_profile_bounds(e.profile) for e in model.extrudes]
    diagonal = _model_diagonal(frames, spans, bounds)
    _check_complexity(model.extrudes, CHORD_TOLERANCE * diagonal)

    volume_eps = VOLUME_SHARE * diagonal**3
    bodies: Bodies = []
    steps = zip(model.extrudes, frames, spans, bounds, strict=True)
    for index, (extrude, frame, span, box) in enumerate(steps):
        if span[1] - span[0] <= LENGTH_SHARE * diagonal:
            raise CadError("degenerate", "extrude has zero depth")
        part = _extrude_part(extrude.profile, frame, span, box, diagonal)
        if index == 0:
            bodies = [part]
        elif extrude.operation == Operation.CUT:
            bodies = cut(bodies, part, volume_eps)
        elif extrude.operation == Operation.INTERSECT:
            bodies = intersect(bodies, part, volume_eps)
        else:
            bodies = fuse(bodies, part, CONTACT_AREA_SHARE * diagonal**2)
        _check(bodies, deadline, time_limit)
    if not bodies:
        raise CadError("empty_solid", "the operations leave no volume")
    return _solid_from(bodies, diagonal, mesh_extras)


def _check_complexity(extrudes: tuple[Extrude, ...], chord_tol: float) -> None:
    total = 0
    for extrude in extrudes:
        loops = len(extrude.profile.loops)
        if loops > MAX_PROFILE_LOOPS:
            raise CadError(
                "too_complex", f"a profile has {loops} loops (limit {MAX_PROFILE_LOOPS})"
            )
        vertices = estimate_vertices(extrude.profile, chord_tol)
        if vertices > MAX_PROFILE_VERTICES:
            raise CadError(
                "too_complex", f"a profile has {vertices} vertices (limit {MAX_PROFILE_VERTICES})"
            )
        total += vertices
    if total > MAX_MODEL_VERTICES:
        raise CadError("too_complex", f"{total} sketch vertices (limit {MAX_MODEL_VERTICES})")


def _frame(plane: SketchPlane) -> _Frame:
    """An orthonormal frame; y is normal cross x, as DeepCAD defines it."""
    origin = np.asarray(plane.origin, dtype=np.float64)
    x_axis = np.asarray(plane.x_axis, dtype=np.float64)
    normal = np.asarray(plane.normal, dtype=np.float64)
    if not (
        np.all(np.isfinite(origin)) and np.all(np.isfinite(x_axis)) and np.all(np.isfinite(normal))
    ):
        raise CadError("degenerate", "sketch plane has non-finite coordinates")
    if max(np.abs(x_axis).max(), np.abs(normal).max()) > 2.0:
        raise CadError("degenerate", "sketch plane axes are not unit vectors")
    x_len, n_len = np.linalg.norm(x_axis), np.linalg.norm(normal)
    if abs(x_len - 1.0) > AXIS_TOLERANCE or abs(n_len - 1.0) > AXIS_TOLERANCE:
        raise CadError("degenerate", "sketch plane axes are not unit vectors")
    x_axis, normal = x_axis / x_len, normal / n_len
    if abs(float(np.dot(x_axis, normal))) > AXIS_TOLERANCE:
        raise CadError("degenerate", "sketch plane x axis is not perpendicular to its normal")
    x_axis = x_axis - np.dot(x_axis, normal) * normal
    x = _clean_axis((x_axis / np.linalg.norm(x_axis)).tolist())
    n = _clean_axis(normal.tolist())
    y = _clean_axis(
        [n[1] * x[2] - n[2] * x[1], n[2] * x[0] - n[0] * x[2], n[0] * x[1] - n[1] * x[0]]
    )
    along = (_world_axis(x), _world_axis(y), _world_axis(n))
    return _Frame(origin, np.array(x), np.array(y), np.array(n), along)


def _clean_axis(axis: list[float]) -> list[float]:
    """A unit axis with its rounding noise removed: an axis along a world axis becomes exactly
    that axis (so placing coordinates along it adds no rounding)."""
    values = [0.0 if abs(c) < AXIS_NOISE else c for c in axis]
    if sum(1 for c in values if c) == 1:
        values = [math.copysign(1.0, c) if c else 0.0 for c in values]
    return values


def _world_axis(axis: list[float]) -> int:
    """Which world axis a cleaned unit axis lies on, or -1."""
    hits = [k for k, c in enumerate(axis) if c]
    return hits[0] if len(hits) == 1 else -1


def _extent_span(extrude: Extrude) -> tuple[float, float]:
    """The covered interval along the normal: DeepCAD fuses a prism of ``extent_one`` with,
    for Symmetric, its mirror and, for TwoSides, a prism of ``extent_two`` against the normal."""
    one, two = extrude.extent_one, extrude.extent_two
    if extrude.extent_type == ExtentType.SYMMETRIC:
        ends = [-abs(one), abs(one)]
    elif extrude.extent_type == ExtentType.TWO_SIDES:
        ends = [one, -two]
    else:
        ends = [one]
    if not all(np.isfinite(ends)):
        raise CadError("degenerate", "extrude extent is not finite")
    return min(0.0, *ends), max(0.0, *ends)


def _model_diagonal(
    frames: list[_Frame],
    spans: list[tuple[float, float]],
    bounds: list[tuple[float, float, float, float]],
) -> float:
    """Diagonal of a box holding every extrude (curves by their circles' boxes)."""
    corners = []
    for frame, (lo, hi), (u0, v0, u1, v1) in zip(frames, spans, bounds, strict=True):
        for u in (u0, u1):
            for v in (v0, v1):
                for w in (lo, hi):
                    corners.append(
                        frame.origin + u * frame.x_axis + v * frame.y_axis + w * frame.normal
                    )
    points = np.array(corners)
    with np.errstate(over="ignore", invalid="ignore"):  # absurd sizes become inf, refused below
        diagonal = float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))
    if not np.isfinite(diagonal) or diagonal <= 0.0:
        raise CadError("degenerate", "model has no extent")
    return diagonal


def _profile_bounds(profile: Profile) -> tuple[float, float, float, float]:
    us: list[float] = []
    vs: list[float] = []
    for curve in (c for loop in profile.loops for c in loop.curves):
        if isinstance(curve, Line):
            us += [curve.start[0], curve.end[0]]
            vs += [curve.start[1], curve.end[1]]
        elif isinstance(curve, Arc | Circle):
            if not curve.radius > 0.0:
                raise CadError("degenerate", f"curve radius {curve.radius}")
            (cu, cv), r = curve.center, curve.radius
            us += [cu - r, cu + r]
            vs += [cv - r, cv + r]
    if not us:
        raise CadError("degenerate", "profile has no curves")
    return min(us), min(vs), max(us), max(vs)


def _extrude_part(
    profile: Profile,
    frame: _Frame,
    span: tuple[float, float],
    bounds: tuple[float, float, float, float],
    diagonal: float,
) -> manifold3d.Manifold:
    """The prism of one profile, placed in its sketch plane (in metres)."""
    for curve in (c for loop in profile.loops for c in loop.curves):
        if isinstance(curve, Arc | Circle) and curve.radius <= LENGTH_SHARE * diagonal:
            raise CadError("degenerate", f"curve radius {curve.radius} is zero at this scale")
    scale = _sketch_scale(diagonal)
    grid = SNAP_UNITS / scale  # in metres, a power of two
    centre = (0.5 * (bounds[0] + bounds[2]), 0.5 * (bounds[1] + bounds[3]))
    origin, sign, base, ref = _placement(frame, centre, grid)
    loops = [loop_points(loop, CHORD_TOLERANCE * diagonal) for loop in profile.loops]
    points = np.concatenate(loops) if len(loops) > 1 else loops[0]
    placed = sign[:2] * (_snap(base[:2] + sign[:2] * points, grid) - ref[:2]) * scale
    ends = np.cumsum([len(loop) for loop in loops]).tolist()
    polygons = [placed[end - len(loop) : end] for loop, end in zip(loops, ends, strict=True)]
    section = profile_section(polygons, AREA_SHARE * (diagonal * scale) ** 2)
    lo, hi = (sign[2] * (_snap(base[2] + sign[2] * t, grid) - ref[2]) for t in span)
    prism = manifold3d.Manifold.extrude(section, hi - lo).translate((0.0, 0.0, lo))
    matrix = np.column_stack([frame.x_axis / scale, frame.y_axis / scale, frame.normal, origin])
    return prism.transform(matrix)


def _placement(
    frame: _Frame, centre: tuple[float, float], grid: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Where a profile's prism is placed from (a grid point near the profile, so that sketch
    units stay within the diagonal) and how a coordinate ``t`` along x, y or the normal is
    re-expressed from there: ``sign * (snap(base + sign * t) - ref)``. Along world axis k the
    snapped value is the world coordinate (``base`` is the frame origin's k, ``ref`` the new
    origin's k), so placing it back adds grid multiples exactly; along a tilted axis ``t`` is
    only moved to the centre (and onto the grid)."""
    axes = (frame.x_axis, frame.y_axis, frame.normal)
    origin = _snap(frame.origin + centre[0] * frame.x_axis + centre[1] * frame.y_axis, grid)
    sign = np.ones(3)
    base = np.array([-centre[0], -centre[1], 0.0])
    ref = np.zeros(3)
    for i, k in enumerate(frame.along):
        if k >= 0:
            sign[i], base[i], ref[i] = axes[i][k], frame.origin[k], origin[k]
    return origin, sign, base, ref


def _snap(values: np.ndarray, grid: float) -> np.ndarray:
    """The nearest multiples of ``grid`` (a power of two, so the result is exact)."""
    return np.round(values / grid) * grid


def _sketch_scale(diagonal: float) -> float:
    """A power of two (so scaling is exact) that brings the diagonal to 2**21..2**22 units:
    manifold3d's 2D rounding to 1e-8 is far below any tolerance, and the snap grid
    (``SNAP_UNITS``, 2**-30..2**-29 of the diagonal) lies on it."""
    return 2.0 ** (21 - math.floor(math.log2(diagonal)))


def _check(bodies: Bodies, deadline: float, time_limit: float) -> None:
    """Charge failures and time to the step that caused them (booleans run lazily)."""
    for body in bodies:
        status = body.status()
        if status != manifold3d.Error.NoError:
            raise CadError("build_failed", f"manifold3d: {status.name}")
    if time.monotonic() > deadline:
        raise CadError("timeout", f"building took over {time_limit:g} s")


def _solid_from(bodies: Bodies, diagonal: float, mesh_extras: bool) -> Solid:
    volume_eps = VOLUME_SHARE * diagonal**3
    body = manifold3d.Manifold.batch_boolean(bodies, manifold3d.OpType.Add)
    volume = float(body.volume())
    if body.is_empty() or volume <= volume_eps:
        raise CadError("empty_solid", "the operations leave no volume")
    mesh = body.to_mesh64()
    vertices = np.ascontiguousarray(np.asarray(mesh.vert_properties)[:, :3], dtype=np.float64)
    faces = np.asarray(mesh.tri_verts).astype(np.int32)
    topology = edge_topology(faces, len(vertices))
    if mesh_extras:
        normals = face_normals(vertices, faces)
        creases = feature_edges(topology, normals)
    else:
        normals = np.empty((0, 3), dtype=np.float64)
        creases = np.empty((0, 2), dtype=np.int32)
    return Solid(
        vertices=vertices,
        faces=faces,
        face_normals=normals,
        feature_edges=creases,
        volume=volume,
        area=float(body.surface_area()),
        bbox=np.array([vertices.min(axis=0), vertices.max(axis=0)]),
        num_solids=count_solids(bodies, volume_eps),
        watertight=topology.watertight,
        manifold=body,
    )
