"""Find sliver features in a model before building it: walls, gaps and steps too thin to see.

A sliver is a feature thinner than a threshold (a share of the part's largest side) that is not
exactly zero: an extrude too shallow, a curve too short, two loops of a profile (or of coplanar
extrudes) nearly touching, or planar faces of neighbouring extrudes nearly, but not exactly,
flush. The last test compares the world boxes of the loops of axis-aligned extrudes; tilted
extrudes are checked for depth, curves and gaps only.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from stages.cad.chain import curve_length
from stages.cad.model import Arc, CadModel, Circle, Extrude, Line, Loop, SketchPlane
from stages.cad.synth.design import extent_range, loop_box

FLUSH_SHARE = 1e-6  # faces closer than this share of the size are the same face
SAMPLES_PER_THRESHOLD = 3  # loop sampling density for the gap test
MAX_SAMPLES = 4000  # per loop


@dataclass(frozen=True, slots=True, eq=False)
class _Placed:
    """One loop of one extrude, placed in the world."""

    extrude: int
    loop: Loop
    plane: SketchPlane
    box: np.ndarray  # (2, 3) world box of the loop's prism
    flat: np.ndarray  # (2, 3) which box sides are planar faces of the prism (see _flat_sides)


def find_sliver(model: CadModel, share: float) -> str | None:
    """Describe the first feature thinner than ``share`` of the part's largest side, or None."""
    if not model.extrudes:
        return None
    loops = [(n, e, loop) for n, e in enumerate(model.extrudes) for loop in e.profile.loops]
    boxes = [_prism_box(e, loop) for _, e, loop in loops]
    size = float(
        np.max(np.max([b[1] for b in boxes], axis=0) - np.min([b[0] for b in boxes], axis=0))
    )
    threshold, flush = share * size, FLUSH_SHARE * size
    for number, extrude in enumerate(model.extrudes):
        found = _extrude_sliver(extrude, threshold)
        if found:
            return f"extrude {number}: {found}"
    placed = [
        _Placed(n, loop, e.plane, box, _flat_sides(e, loop, threshold, flush))
        for (n, e, loop), box in zip(loops, boxes, strict=True)
    ]
    groups: dict[tuple, list[_Placed]] = {}
    for p in placed:
        groups.setdefault(_placement_key(model.extrudes[p.extrude], threshold), []).append(p)
    for members in groups.values():
        if _min_loop_gap(members, threshold) < threshold:
            numbers = sorted({p.extrude for p in members})
            return f"extrudes {numbers} have loops closer than {threshold:.3g} m"
    return _near_flush(placed, threshold, flush)


def _extrude_sliver(extrude: Extrude, threshold: float) -> str | None:
    low, high = extent_range(extrude.extent_type, extrude.extent_one, extrude.extent_two)
    if high - low < threshold:
        return f"depth {high - low:.3g} m"
    for loop in extrude.profile.loops:
        for curve in loop.curves:
            if curve_length(curve) < threshold:
                return f"{type(curve).__name__.lower()} {curve_length(curve):.3g} m long"
    return None


def _placement_key(extrude: Extrude, threshold: float) -> tuple:
    """Extrudes with equal keys lie in one plane with one span (e.g. one multi-profile cut)."""
    p = extrude.plane
    normal = np.asarray(p.normal, dtype=float)
    offset = float(np.dot(normal, p.origin))
    low, high = extent_range(extrude.extent_type, extrude.extent_one, extrude.extent_two)
    ends = (offset + low, offset + high)
    if normal[int(np.argmax(np.abs(normal)))] < 0:  # one direction per plane
        normal, ends = -normal, (-ends[1], -ends[0])
    grain = threshold / 10
    return (*np.round(normal, 6).tolist(), round(ends[0] / grain), round(ends[1] / grain))


def _min_loop_gap(members: list[_Placed], threshold: float) -> float:
    """Smallest distance between two different loops lying in one plane."""
    best = math.inf
    samples: dict[int, np.ndarray] = {}
    for a, b in itertools.combinations(range(len(members)), 2):
        first, second = members[a], members[b]
        if np.any(first.box[0] > second.box[1] + threshold) or np.any(
            second.box[0] > first.box[1] + threshold
        ):
            continue  # too far apart to matter
        best = min(best, _loop_gap(first, second, threshold, samples, a, b))
    return best


def _loop_gap(
    first: _Placed,
    second: _Placed,
    threshold: float,
    samples: dict[int, np.ndarray],
    a: int,
    b: int,
) -> float:
    """Distance between two coplanar loops: exact for circles, sampled otherwise."""
    circle_a, circle_b = _lone_circle(first.loop), _lone_circle(second.loop)
    if circle_a and circle_b:
        d = float(np.linalg.norm(_world_center(first) - _world_center(second)))
        r1, r2 = circle_a.radius, circle_b.radius
        return max(d - r1 - r2, abs(r1 - r2) - d, 0.0)
    for placed, index in ((first, a), (second, b)):
        if index not in samples and not _lone_circle(placed.loop):
            spacing = threshold / SAMPLES_PER_THRESHOLD
            samples[index] = _to_world(placed.plane, _sample_loop(placed.loop, spacing))
    lone = circle_a or circle_b
    if lone is not None:
        circle, other = (first, samples[b]) if circle_a else (second, samples[a])
        distances = np.linalg.norm(other - _world_center(circle), axis=1)
        return float(np.min(np.abs(distances - lone.radius)))
    distance, _ = cKDTree(samples[a]).query(samples[b], k=1)
    return float(np.min(distance))


def _lone_circle(loop: Loop) -> Circle | None:
    if len(loop.curves) == 1 and isinstance(loop.curves[0], Circle):
        return loop.curves[0]
    return None


def _world_center(placed: _Placed) -> np.ndarray:
    circle = placed.loop.curves[0]
    assert isinstance(circle, Circle)
    return _to_world(placed.plane, np.array([circle.center]))[0]


def _sample_loop(loop: Loop, spacing: float) -> np.ndarray:
    total = sum(curve_length(c) for c in loop.curves)
    spacing = max(spacing, total / MAX_SAMPLES)
    points: list[np.ndarray] = []
    for curve in loop.curves:
        count = max(2, math.ceil(curve_length(curve) / spacing) + 1)
        t = np.linspace(0.0, 1.0, count)
        if isinstance(curve, Line):
            start, end = np.asarray(curve.start), np.asarray(curve.end)
            points.append(start + t[:, None] * (end - start))
            continue
        if isinstance(curve, Circle):
            angles, center = 2 * math.pi * t, curve.center
        else:
            assert isinstance(curve, Arc)
            angles, center = curve.start_angle + curve.sweep * t, curve.center
        x = center[0] + curve.radius * np.cos(angles)
        y = center[1] + curve.radius * np.sin(angles)
        points.append(np.column_stack([x, y]))
    return np.vstack(points)


def _to_world(plane: SketchPlane, points: np.ndarray) -> np.ndarray:
    origin, x, y = (np.asarray(a, dtype=float) for a in (plane.origin, plane.x_axis, plane.y_axis))
    return origin + points[:, :1] * x + points[:, 1:2] * y


def _prism_box(extrude: Extrude, loop: Loop) -> np.ndarray:
    """The world box (2, 3) of one loop's prism."""
    u0, v0, u1, v1 = loop_box(loop)
    w0, w1 = extent_range(extrude.extent_type, extrude.extent_one, extrude.extent_two)
    p = extrude.plane
    frame = np.array([p.x_axis, p.y_axis, p.normal], dtype=float)
    local = np.array([(u, v, w) for u in (u0, u1) for v in (v0, v1) for w in (w0, w1)])
    corners = local @ frame + np.asarray(p.origin, dtype=float)
    return np.array([corners.min(axis=0), corners.max(axis=0)])


def _axis_aligned(plane: SketchPlane) -> bool:
    return all(
        sum(abs(c) > 1e-9 for c in axis) == 1 for axis in (plane.x_axis, plane.y_axis, plane.normal)
    )


def _flat_sides(extrude: Extrude, loop: Loop, threshold: float, flush: float) -> np.ndarray:
    """Which sides (min/max per world axis) of a loop's prism box are real planar faces: the
    caps, and sides along which the loop has a straight edge. A circle's box sides only touch
    it, so two round features are never compared by their boxes."""
    flat = np.zeros((2, 3), dtype=bool)
    p = extrude.plane
    if not _axis_aligned(p):
        return flat
    u0, v0, u1, v1 = loop_box(loop)
    local = np.zeros((2, 2), dtype=bool)  # [min/max, u/v]
    for curve in loop.curves:
        if not isinstance(curve, Line) or curve_length(curve) < threshold:
            continue
        for k, (low, high) in enumerate(((u0, u1), (v0, v1))):
            if abs(curve.start[k] - curve.end[k]) <= flush:
                local[0, k] |= abs(curve.start[k] - low) <= flush
                local[1, k] |= abs(curve.start[k] - high) <= flush
    for k, axis in enumerate((p.x_axis, p.y_axis)):
        world = int(np.argmax(np.abs(axis)))
        flat[:, world] |= local[:, k] if axis[world] > 0 else local[::-1, k]
    flat[:, int(np.argmax(np.abs(p.normal)))] = True
    return flat


def _near_flush(placed: list[_Placed], threshold: float, flush: float) -> str | None:
    """Planar faces of neighbouring axis-aligned extrudes that are almost, not quite, flush."""
    aligned = [p for p in placed if p.flat.any()]
    for first, second in itertools.combinations(aligned, 2):
        if first.extrude == second.extrude:
            continue
        a, b = first.box, second.box
        if np.any(a[0] > b[1] + threshold) or np.any(b[0] > a[1] + threshold):
            continue
        gaps = np.abs(a[:, None, :] - b[None, :, :])  # (2, 2, 3): every side pair per axis
        compared = first.flat[:, None, :] | second.flat[None, :, :]
        close = compared & (gaps > flush) & (gaps < threshold)
        if np.any(close):
            axis = "xyz"[int(np.argwhere(close)[0][2])]
            gap = float(gaps[close].min())
            return (
                f"extrudes {first.extrude} and {second.extrude} have faces {gap:.3g} m apart"
                f" in {axis}"
            )
    return None
