"""Drawing helpers for synthetic parts: a dimension grid, standard sketch planes, 2D loops.

Dimensions snap to a grid in millimetres or inches, as a designer types them; this keeps faces
of different features either exactly flush or clearly apart (no slivers by accident). Loops are
counter-clockwise (holes too: DeepCAD does not orient loops; the builder decides what is a hole).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from stages.cad.model import Arc, Circle, Curve, Line, Loop, SketchPlane, Vec2, Vec3

MM = 0.001
INCH = 0.0254
# Grid steps a designer would use, per unit; the step is about 1/60 of the part's size.
MM_STEPS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
INCH_STEPS = (1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2)
STEPS_PER_SIZE = 60


@dataclass(frozen=True, slots=True)
class Grid:
    """The part's characteristic size and the dimension grid it is drawn on (metres)."""

    size: float
    unit: float
    step: float

    @classmethod
    def draw(cls, rng: random.Random, size_range: tuple[float, float], inch_share: float) -> Grid:
        low, high = size_range
        size = math.exp(rng.uniform(math.log(low), math.log(high)))
        unit = INCH if rng.random() < inch_share else MM
        steps = INCH_STEPS if unit == INCH else MM_STEPS
        wanted = size / unit / STEPS_PER_SIZE
        step = max([s for s in steps if s <= wanted], default=steps[0])
        return cls(size=size, unit=unit, step=step)

    @property
    def quantum(self) -> float:
        """One grid step in metres: the smallest dimension drawn on this part."""
        return self.step * self.unit

    def snap(self, metres: float, minimum_steps: int = 1) -> float:
        """The grid value nearest ``metres``, at least ``minimum_steps`` steps (keeps the sign)."""
        count = max(minimum_steps, round(abs(metres) / self.quantum))
        return math.copysign(count * self.step * self.unit, metres)

    def pick(self, rng: random.Random, low: float, high: float, minimum_steps: int = 2) -> float:
        """A random dimension between ``low`` and ``high`` times the part size, on the grid."""
        return self.snap(rng.uniform(low, high) * self.size, minimum_steps)


# -- sketch planes -----------------------------------------------------------------------------


def plane(origin: Vec3, x_axis: Vec3, normal: Vec3) -> SketchPlane:
    """A right-handed sketch frame; DeepCAD's y axis is ``normal x x_axis``."""
    return SketchPlane(origin, x_axis, _cross(normal, x_axis), normal)


def top_plane(offset: float = 0.0) -> SketchPlane:
    """Onshape's Top plane at height z = ``offset``: local (u, v) is world (x, y)."""
    return plane((0.0, 0.0, offset), (1.0, 0.0, 0.0), (0.0, 0.0, 1.0))


def front_plane(offset: float = 0.0) -> SketchPlane:
    """Onshape's Front plane moved ``offset`` along its normal (-y); local (u, v) = world (x, z)."""
    return plane((0.0, -offset, 0.0), (1.0, 0.0, 0.0), (0.0, -1.0, 0.0))


def right_plane(offset: float = 0.0) -> SketchPlane:
    """Onshape's Right plane at x = ``offset``: local (u, v) is world (y, z), normal towards +x."""
    return plane((offset, 0.0, 0.0), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0))


def turned_top_plane(z: float, angle: float) -> SketchPlane:
    """A Top plane at height ``z`` turned by ``angle`` about the vertical axis."""
    return plane((0.0, 0.0, z), (math.cos(angle), math.sin(angle), 0.0), (0.0, 0.0, 1.0))


def tilted_plane(origin: Vec3, tilt: float) -> SketchPlane:
    """A plane through ``origin`` whose normal leans from +z towards +x by ``tilt`` radians."""
    normal = (math.sin(tilt), 0.0, math.cos(tilt))
    return plane(origin, (0.0, 1.0, 0.0), normal)


def affine(origin: Vec3, *terms: tuple[float, Vec3]) -> Vec3:
    """``origin + sum(weight * vector)``: a point placed in a frame, or a combined axis."""
    x, y, z = origin
    for weight, vector in terms:
        x += weight * vector[0]
        y += weight * vector[1]
        z += weight * vector[2]
    return (x, y, z)


ZERO: Vec3 = (0.0, 0.0, 0.0)


def _cross(a: Vec3, b: Vec3) -> Vec3:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


# -- loops ---------------------------------------------------------------------------------------


def circle(center: Vec2, radius: float) -> Loop:
    return Loop((Circle(center, radius),))


def polygon(points: Sequence[Vec2]) -> Loop:
    """A closed polygon through ``points`` in order."""
    count = len(points)
    return Loop(tuple(Line(points[i], points[(i + 1) % count]) for i in range(count)))


def rectangle(x0: float, y0: float, x1: float, y1: float) -> Loop:
    return polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])


def rounded_polygon(points: Sequence[Vec2], radii: Sequence[float]) -> Loop:
    """A counter-clockwise polygon whose corner ``i`` is rounded with radius ``radii[i]``.

    Zero radii keep sharp corners. Concave corners get clockwise arcs (a fillet that adds
    material); the caller keeps each radius small enough for the neighbouring edges.
    """
    count = len(points)
    corners: list[tuple[Vec2, Vec2, Arc | None]] = []
    for i, corner in enumerate(points):
        radius = radii[i]
        if radius <= 0:
            corners.append((corner, corner, None))
            continue
        corners.append(_fillet(points[i - 1], corner, points[(i + 1) % count], radius))
    curves: list[Curve] = []
    for i in range(count):
        _, exit_point, arc = corners[i]
        if arc is not None:
            curves.append(arc)
        next_entry = corners[(i + 1) % count][0]
        if exit_point != next_entry:
            curves.append(Line(exit_point, next_entry))
    return Loop(tuple(curves))


def _fillet(before: Vec2, corner: Vec2, after: Vec2, radius: float) -> tuple[Vec2, Vec2, Arc]:
    """Tangent points and arc that round ``corner`` between edges to ``before`` and ``after``."""
    ax, ay = _unit(before[0] - corner[0], before[1] - corner[1])
    bx, by = _unit(after[0] - corner[0], after[1] - corner[1])
    half = math.acos(max(-1.0, min(1.0, ax * bx + ay * by))) / 2.0
    reach = radius / math.tan(half)
    entry = (corner[0] + ax * reach, corner[1] + ay * reach)
    exit_point = (corner[0] + bx * reach, corner[1] + by * reach)
    mx, my = _unit(ax + bx, ay + by)
    centre_distance = radius / math.sin(half)
    center = (corner[0] + mx * centre_distance, corner[1] + my * centre_distance)
    turn = (corner[0] - before[0]) * (after[1] - corner[1]) - (corner[1] - before[1]) * (
        after[0] - corner[0]
    )
    sweep = math.copysign(math.pi - 2.0 * half, turn)
    return entry, exit_point, Arc(entry, exit_point, center, radius, sweep)


def rounded_rectangle(x0: float, y0: float, x1: float, y1: float, radius: float) -> Loop:
    return rounded_polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], [radius] * 4)


def slot(first: Vec2, second: Vec2, radius: float) -> Loop:
    """A rounded slot (stadium) whose end arcs are centred on ``first`` and ``second``."""
    dx, dy = _unit(second[0] - first[0], second[1] - first[1])
    nx, ny = -dy * radius, dx * radius
    p1 = (first[0] - nx, first[1] - ny)
    p2 = (second[0] - nx, second[1] - ny)
    p3 = (second[0] + nx, second[1] + ny)
    p4 = (first[0] + nx, first[1] + ny)
    return Loop(
        (
            Line(p1, p2),
            Arc(p2, p3, second, radius, math.pi),
            Line(p3, p4),
            Arc(p4, p1, first, radius, math.pi),
        )
    )


def ring_points(center: Vec2, radius: float, count: int, phase: float) -> list[Vec2]:
    """``count`` points evenly spaced on a circle, the first at angle ``phase``."""
    return [
        (
            center[0] + radius * math.cos(phase + 2.0 * math.pi * i / count),
            center[1] + radius * math.sin(phase + 2.0 * math.pi * i / count),
        )
        for i in range(count)
    ]


def _unit(x: float, y: float) -> Vec2:
    length = math.hypot(x, y)
    return (x / length, y / length)
