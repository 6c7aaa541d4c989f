"""A synthetic part as DeepCAD builds it: sketches (each with several profiles) and extrudes.

The generator's part families describe a part with these values before it is written as
DeepCAD JSON. They keep what ``CadModel`` flattens away and a DeepCAD file has: a sketch holds
several profiles, one extrude may use several of them, and a sketch may be used by none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from stages.cad.model import Arc, Circle, ExtentType, Line, Loop, Operation, Profile, SketchPlane

# Rough OpenECAD v2 code size (characters) per statement group, measured on the golden files:
# a profile's fixed lines (plane, lists, sketch, extrude), a loop's two lines, one per curve.
CODE_CHARS_PER_PROFILE = 310
CODE_CHARS_PER_LOOP = 30
CODE_CHARS_PER_CURVE = {Line: 68, Arc: 95, Circle: 52}


@dataclass(frozen=True, slots=True)
class SketchSpec:
    """One DeepCAD Sketch entity: a plane and its profiles, in sketch-local coordinates."""

    plane: SketchPlane
    profiles: tuple[Profile, ...]


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """One DeepCAD ExtrudeFeature: which profiles of which sketch, and how they extrude."""

    sketch: int
    profiles: tuple[int, ...]
    operation: Operation
    extent_type: ExtentType
    extent_one: float
    extent_two: float = 0.0


@dataclass(frozen=True, slots=True)
class Design:
    """A whole synthetic part; features run in order, a sketch comes before its first use."""

    family: str
    sketches: tuple[SketchSpec, ...]
    features: tuple[FeatureSpec, ...]

    def used_profiles(self) -> list[Profile]:
        """Every profile an extrude uses, once per use."""
        return [
            self.sketches[feature.sketch].profiles[index]
            for feature in self.features
            for index in feature.profiles
        ]

    def estimated_code_chars(self) -> int:
        """Approximate length of the OpenECAD answer, to keep answers inside the context."""
        total = 0
        for profile in self.used_profiles():
            total += CODE_CHARS_PER_PROFILE + CODE_CHARS_PER_LOOP * len(profile.loops)
            for loop in profile.loops:
                total += sum(CODE_CHARS_PER_CURVE[type(c)] for c in loop.curves)
        return total


@dataclass
class DesignBuilder:
    """Collects sketches and features in order; families call ``sketch`` then ``extrude``."""

    family: str
    sketches: list[SketchSpec] = field(default_factory=list)
    features: list[FeatureSpec] = field(default_factory=list)

    def sketch(self, plane: SketchPlane, *profiles: Profile) -> int:
        self.sketches.append(SketchSpec(plane, tuple(profiles)))
        return len(self.sketches) - 1

    def extrude(
        self,
        sketch: int,
        operation: Operation,
        extent_one: float,
        *,
        extent_type: ExtentType = ExtentType.ONE_SIDE,
        extent_two: float = 0.0,
        profiles: tuple[int, ...] | None = None,
    ) -> None:
        """Extrude some (default: all) profiles of ``sketch`` as one feature."""
        if profiles is None:
            profiles = tuple(range(len(self.sketches[sketch].profiles)))
        self.features.append(
            FeatureSpec(sketch, profiles, operation, extent_type, extent_one, extent_two)
        )

    def build(self) -> Design:
        return Design(self.family, tuple(self.sketches), tuple(self.features))


def extent_range(
    extent_type: ExtentType, extent_one: float, extent_two: float
) -> tuple[float, float]:
    """The span an extrude covers along its plane normal, with DeepCAD's extent semantics."""
    if extent_type == ExtentType.SYMMETRIC:
        return (-abs(extent_one), abs(extent_one))
    if extent_type == ExtentType.TWO_SIDES:
        return (min(-extent_two, extent_one), max(-extent_two, extent_one))
    return (min(0.0, extent_one), max(0.0, extent_one))


def loop_box(loop: Loop) -> tuple[float, float, float, float]:
    """The exact 2D bounding box ``(u0, v0, u1, v1)`` of a loop (arcs include their extremes)."""
    us: list[float] = []
    vs: list[float] = []
    for curve in loop.curves:
        if isinstance(curve, Circle):
            (cu, cv), r = curve.center, curve.radius
            us += [cu - r, cu + r]
            vs += [cv - r, cv + r]
            continue
        us += [curve.start[0], curve.end[0]]
        vs += [curve.start[1], curve.end[1]]
        if isinstance(curve, Arc):
            for u, v in _arc_extremes(curve):
                us.append(u)
                vs.append(v)
    return (min(us), min(vs), max(us), max(vs))


def _arc_extremes(arc: Arc) -> list[tuple[float, float]]:
    """Points of the arc at angles 0, 90, 180 and 270 degrees that lie within its sweep."""
    start = arc.start_angle if arc.sweep > 0 else arc.start_angle + arc.sweep
    sweep = abs(arc.sweep)
    found = []
    for quarter in range(4):
        angle = quarter * math.pi / 2
        if (angle - start) % (2 * math.pi) <= sweep:
            found.append(
                (
                    arc.center[0] + arc.radius * math.cos(angle),
                    arc.center[1] + arc.radius * math.sin(angle),
                )
            )
    return found
