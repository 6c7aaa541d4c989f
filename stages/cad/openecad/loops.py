"""A profile's loops in the order and direction OpenECAD writes them, in millimetres.

OpenECAD keeps DeepCAD's canonical form: each loop starts at its left-most (then lowest)
start point and runs counter-clockwise by a local test at that point, and a profile's loops
are sorted by their bounding boxes' minimum corner (x, then y, rounded to 1e-6). Arcs carry
DeepCAD's mid point: the reference vector turned by half the sweep, which is what the code
prints as ``mid``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from stages.cad.model import Arc, Circle, Line, Profile, Vec2
from stages.cad.openecad.numbers import np_round

MM_PER_M = 1000.0
# DeepCAD starts its search for the left-most point here (millimetres): a loop lying wholly
# beyond it keeps DeepCAD's quirk of starting at its last curve.
_NO_POINT_YET = 10000.0


@dataclass(frozen=True, slots=True)
class CodeLine:
    start: Vec2
    end: Vec2

    def reversed(self) -> CodeLine:
        return CodeLine(self.end, self.start)

    def direction(self, from_start: bool) -> Vec2:
        return (self.end[0] - self.start[0], self.end[1] - self.start[1])

    def bbox_min(self) -> Vec2:
        return (min(self.start[0], self.end[0]), min(self.start[1], self.end[1]))


@dataclass(frozen=True, slots=True)
class CodeArc:
    """An arc through ``start``, ``mid`` and ``end``; reversing swaps only the ends."""

    start: Vec2
    end: Vec2
    mid: Vec2
    center: Vec2
    radius: float

    def reversed(self) -> CodeArc:
        return CodeArc(self.end, self.start, self.mid, self.center, self.radius)

    def direction(self, from_start: bool) -> Vec2:
        if from_start:
            return (self.mid[0] - self.start[0], self.mid[1] - self.start[1])
        return (self.end[0] - self.mid[0], self.end[1] - self.mid[1])

    def bbox_min(self) -> Vec2:
        """Lower corner of the arc's box: its ends plus the axis extremes it passes."""
        angle_s, angle_e = self._counterclockwise_angles()
        (cx, cy), r = self.center, self.radius
        points = [self.start, self.end]
        half_pi = math.pi / 2
        if angle_s < math.pi < angle_e or angle_s < -math.pi < angle_e:
            points.append((cx - r, cy))
        if angle_s < 3 * half_pi < angle_e or angle_s < -half_pi < angle_e:
            points.append((cx, cy - r))
        if angle_s < 0 < angle_e:
            points.append((cx + r, cy))
        if angle_s < half_pi < angle_e or angle_s < -3 * half_pi < angle_e:
            points.append((cx, cy + r))
        return (min(p[0] for p in points), min(p[1] for p in points))

    def _counterclockwise_angles(self) -> tuple[float, float]:
        angle_s = _angle_to_x(self._unit_from_center(self.start))
        angle_m = _angle_to_x(self._unit_from_center(self.mid))
        angle_e = _angle_to_x(self._unit_from_center(self.end))
        angle_s, angle_e = min(angle_s, angle_e), max(angle_s, angle_e)
        if not angle_s < angle_m < angle_e:
            angle_s, angle_e = angle_e - 2 * math.pi, angle_s
        return angle_s, angle_e

    def _unit_from_center(self, point: Vec2) -> Vec2:
        dx, dy = point[0] - self.center[0], point[1] - self.center[1]
        length = math.sqrt(0.0 + dx * dx + dy * dy) + 1e-8
        return (dx / length, dy / length)


@dataclass(frozen=True, slots=True)
class CodeCircle:
    center: Vec2
    radius: float

    @property
    def start(self) -> Vec2:
        return (self.center[0] - self.radius, self.center[1])

    def bbox_min(self) -> Vec2:
        return (self.center[0] - self.radius, self.center[1] - self.radius)


CodeCurve = CodeLine | CodeArc | CodeCircle


def code_loops(profile: Profile) -> tuple[tuple[CodeCurve, ...], ...]:
    """The profile's loops as OpenECAD writes them: each reordered, then all sorted."""
    loops = [_reorder([_to_code_curve(c) for c in loop.curves]) for loop in profile.loops]
    if len(loops) > 1:
        loops.sort(key=_sort_key)
    return tuple(tuple(loop) for loop in loops)


def arc_mid(arc: Arc) -> Vec2:
    """DeepCAD's mid point (mm): the file's reference vector turned by half the sweep, when
    the arc came from a file; otherwise the geometric middle of the arc."""
    center = (arc.center[0] * MM_PER_M, arc.center[1] * MM_PER_M)
    radius = arc.radius * MM_PER_M
    if arc.reference_vector is None:
        mid = arc.mid
        return (mid[0] * MM_PER_M, mid[1] * MM_PER_M)
    # numpy's own matrix product, as OpenECAD does: BLAS may fuse the multiply-adds, and the
    # sign of a zero residue (printed "-0.") depends on it.
    half = abs(arc.sweep) / 2
    cos_h, sin_h = np.cos(half), np.sin(half)
    turned = np.array([[cos_h, -sin_h], [sin_h, cos_h]]) @ np.array(arc.reference_vector)
    return (center[0] + float(turned[0]) * radius, center[1] + float(turned[1]) * radius)


def _to_code_curve(curve: Line | Arc | Circle) -> CodeCurve:
    if isinstance(curve, Line):
        return CodeLine(_mm(curve.start), _mm(curve.end))
    if isinstance(curve, Arc):
        return CodeArc(
            _mm(curve.start),
            _mm(curve.end),
            arc_mid(curve),
            _mm(curve.center),
            curve.radius * MM_PER_M,
        )
    return CodeCircle(_mm(curve.center), curve.radius * MM_PER_M)


def _mm(point: Vec2) -> Vec2:
    return (point[0] * MM_PER_M, point[1] * MM_PER_M)


def _reorder(curves: list[CodeCurve]) -> list[CodeCurve]:
    """DeepCAD's ``Loop.reorder``: fix directions, start left-most, run counter-clockwise."""
    if len(curves) <= 1:
        return curves
    if points_close(curves[0].start, curves[1].start) or points_close(
        curves[0].start, _end(curves[1])
    ):
        curves[0] = _reversed(curves[0])
    start_index = -1
    sx, sy = _NO_POINT_YET, _NO_POINT_YET
    for i in range(len(curves)):
        if i < len(curves) - 1 and points_close(_end(curves[i]), _end(curves[i + 1])):
            curves[i + 1] = _reversed(curves[i + 1])
        x, y = curves[i].start
        if np_round(x, 6) < np_round(sx, 6) or (
            np_round(x, 6) == np_round(sx, 6) and np_round(y, 6) < np_round(sy, 6)
        ):
            start_index = i
            sx, sy = x, y
    curves = curves[start_index:] + curves[:start_index]
    if isinstance(curves[0], CodeCircle) or isinstance(curves[-1], CodeCircle):
        return curves
    start_vec = curves[0].direction(from_start=True)
    end_vec = curves[-1].direction(from_start=False)
    if end_vec[0] * start_vec[1] - end_vec[1] * start_vec[0] <= 0:
        curves = [_reversed(c) for c in reversed(curves)]
    return curves


def _end(curve: CodeCurve) -> Vec2:
    if isinstance(curve, CodeCircle):
        return (curve.center[0] + curve.radius, curve.center[1])
    return curve.end


def _reversed(curve: CodeCurve) -> CodeCurve:
    return curve if isinstance(curve, CodeCircle) else curve.reversed()


def points_close(a: Vec2, b: Vec2) -> bool:
    """``np.allclose`` with its default tolerances."""
    return abs(a[0] - b[0]) <= 1e-8 + 1e-5 * abs(b[0]) and abs(a[1] - b[1]) <= 1e-8 + 1e-5 * abs(
        b[1]
    )


def _sort_key(loop: list[CodeCurve]) -> tuple[float, float]:
    corners = [curve.bbox_min() for curve in loop]
    return (np_round(min(c[0] for c in corners), 6), np_round(min(c[1] for c in corners), 6))


def _angle_to_x(vector: Vec2) -> float:
    """DeepCAD's ``angle_from_vector_to_x``: the angle in [0, 2pi) from asin by quadrant."""
    x, y = vector
    if x >= 0:
        return math.asin(y) if y >= 0 else 2.0 * math.pi - math.asin(-y)
    return math.pi - math.asin(y) if y >= 0 else math.pi + math.asin(-y)
