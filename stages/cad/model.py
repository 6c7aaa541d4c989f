"""A sketch-and-extrude CAD model as small immutable values.

Units are DeepCAD's: metres. The parser (DeepCAD JSON), the OpenECAD interpreter and the
synthetic generator all produce these values; the solid builder and the OpenECAD writer
consume them. Curves in a loop are chained head to tail (each curve's ``end`` is the next
curve's ``start``); nothing here decides which loop is outer: that is geometry's job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum

Vec2 = tuple[float, float]
Vec3 = tuple[float, float, float]


class CadError(ValueError):
    """A model that cannot be used. ``reason`` is a short machine key (``bad_json``,
    ``no_geometry``, ``open_loop``, ``unsupported_curve``, ``degenerate``, ``build_failed``,
    ``timeout``, ...) so stages can count skips per reason; ``detail`` says what was wrong."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class Operation(IntEnum):
    """Boolean operation of an extrude; values are OpenECAD's indices."""

    NEW_BODY = 0
    JOIN = 1
    CUT = 2
    INTERSECT = 3


class ExtentType(IntEnum):
    """How an extrude extends from its sketch plane; values are OpenECAD's indices."""

    ONE_SIDE = 0
    SYMMETRIC = 1
    TWO_SIDES = 2


@dataclass(frozen=True, slots=True)
class Line:
    start: Vec2
    end: Vec2

    def reversed(self) -> Line:
        return Line(self.end, self.start)


@dataclass(frozen=True, slots=True)
class Arc:
    """A circular arc from ``start`` to ``end`` around ``center``.

    ``sweep`` is signed (radians): positive runs counter-clockwise from start to end.
    ``start`` and ``end`` are kept as given (not recomputed) so writers can print them exactly.
    ``reference_vector`` is the file's unit vector from the centre towards the counter-clockwise
    start, when the arc came from a DeepCAD file: OpenECAD computes its printed mid point from
    it, so keeping it lets the writer print the same digits.
    """

    start: Vec2
    end: Vec2
    center: Vec2
    radius: float
    sweep: float
    reference_vector: Vec2 | None = field(default=None, compare=False)

    @property
    def start_angle(self) -> float:
        return math.atan2(self.start[1] - self.center[1], self.start[0] - self.center[0])

    @property
    def mid(self) -> Vec2:
        a = self.start_angle + self.sweep / 2.0
        return (
            self.center[0] + self.radius * math.cos(a),
            self.center[1] + self.radius * math.sin(a),
        )

    def reversed(self) -> Arc:
        return Arc(
            self.end, self.start, self.center, self.radius, -self.sweep, self.reference_vector
        )


@dataclass(frozen=True, slots=True)
class Circle:
    center: Vec2
    radius: float


Curve = Line | Arc | Circle


@dataclass(frozen=True, slots=True)
class Loop:
    """A closed chain of curves (or a single circle), in sketch-local coordinates."""

    curves: tuple[Curve, ...]


@dataclass(frozen=True, slots=True)
class Profile:
    """One region of a sketch: an outer loop and the holes in it, in any order."""

    loops: tuple[Loop, ...]


@dataclass(frozen=True, slots=True)
class SketchPlane:
    """A right-handed frame: a local point (u, v) is ``origin + u*x_axis + v*y_axis``."""

    origin: Vec3
    x_axis: Vec3
    y_axis: Vec3
    normal: Vec3


@dataclass(frozen=True, slots=True)
class Extrude:
    """One profile extruded from its sketch plane (multi-profile features are already split).

    ``extent_one`` is signed along the plane's normal. For SYMMETRIC it is half the depth;
    ``extent_two`` (against the normal) is meaningful only for TWO_SIDES.
    """

    plane: SketchPlane
    profile: Profile
    operation: Operation
    extent_type: ExtentType
    extent_one: float
    extent_two: float = 0.0


@dataclass(frozen=True, slots=True)
class CadModel:
    """A whole model: extrudes applied strictly in order."""

    id: str
    extrudes: tuple[Extrude, ...]
