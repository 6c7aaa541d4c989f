"""Re-expressions of a design that keep its solid but change how DeepCAD would store it.

Real files turn whole parts onto other axes, flip sketch planes (so extents turn negative and
two-sided extents swap), put sketch origins anywhere on the plane and spin sketch frames. Each
function here returns a new ``Design`` whose solid is the same; ``reshape`` picks them at random.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import replace

from stages.cad.model import (
    Arc,
    Circle,
    Curve,
    ExtentType,
    Line,
    Loop,
    Profile,
    SketchPlane,
    Vec2,
    Vec3,
)
from stages.cad.synth.design import Design, FeatureSpec, SketchSpec
from stages.cad.synth.shapes import ZERO, affine

Matrix = tuple[tuple[float, float, float], ...]


def _proper_rotations() -> list[Matrix]:
    """The 24 rotations that map the world axes onto world axes (identity first)."""
    found: list[Matrix] = []
    for order in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            rows = tuple(
                tuple(signs[r] if c == order[r] else 0.0 for c in range(3)) for r in range(3)
            )
            if abs(_determinant(rows) - 1.0) < 1e-9:
                found.append(rows)
    found.sort(key=lambda m: m != ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)))
    return found


def _determinant(m: Matrix) -> float:
    return (
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    )


AXIS_ROTATIONS = _proper_rotations()


def reorient(design: Design, rotation: Matrix) -> Design:
    """Turn the whole part by an axis rotation (the part lies on another face)."""

    def turn(v: Vec3) -> Vec3:
        x, y, z = (sum(rotation[r][c] * v[c] for c in range(3)) for r in range(3))
        return (x, y, z)

    sketches = tuple(
        replace(
            s,
            plane=SketchPlane(
                turn(s.plane.origin),
                turn(s.plane.x_axis),
                turn(s.plane.y_axis),
                turn(s.plane.normal),
            ),
        )
        for s in design.sketches
    )
    return replace(design, sketches=sketches)


def flip_sketch(design: Design, index: int) -> Design:
    """Flip a sketch plane over (y and normal reversed); its extrudes change sign to match."""
    sketch = design.sketches[index]
    p = sketch.plane
    plane = SketchPlane(
        p.origin, p.x_axis, affine(ZERO, (-1.0, p.y_axis)), affine(ZERO, (-1.0, p.normal))
    )
    profiles = _map_profiles(sketch.profiles, lambda u, v: (u, -v), mirror=True)
    features = tuple(_flip_extent(f) if f.sketch == index else f for f in design.features)
    return _with_sketch(design, index, SketchSpec(plane, profiles), features)


def _flip_extent(feature: FeatureSpec) -> FeatureSpec:
    if feature.extent_type == ExtentType.ONE_SIDE:
        return replace(feature, extent_one=-feature.extent_one)
    if feature.extent_type == ExtentType.TWO_SIDES:
        return replace(feature, extent_one=feature.extent_two, extent_two=feature.extent_one)
    return feature


def shift_origin(design: Design, index: int, du: float, dv: float) -> Design:
    """Move a sketch's origin within its plane; the curves keep their place in the world."""
    sketch = design.sketches[index]
    p = sketch.plane
    origin = affine(p.origin, (du, p.x_axis), (dv, p.y_axis))
    plane = SketchPlane(origin, p.x_axis, p.y_axis, p.normal)
    profiles = _map_profiles(sketch.profiles, lambda u, v: (u - du, v - dv), mirror=False)
    return _with_sketch(design, index, SketchSpec(plane, profiles), design.features)


def spin_sketch(design: Design, index: int, quarter_turns: int) -> Design:
    """Turn a sketch's frame in its plane by quarter turns (exactly, no rounding noise)."""
    cos, sin = ((1, 0), (0, 1), (-1, 0), (0, -1))[quarter_turns % 4]
    sketch = design.sketches[index]
    p = sketch.plane
    x_axis = affine(ZERO, (cos, p.x_axis), (sin, p.y_axis))
    y_axis = affine(ZERO, (-sin, p.x_axis), (cos, p.y_axis))
    plane = SketchPlane(p.origin, x_axis, y_axis, p.normal)
    profiles = _map_profiles(
        sketch.profiles, lambda u, v: (cos * u + sin * v, -sin * u + cos * v), mirror=False
    )
    return _with_sketch(design, index, SketchSpec(plane, profiles), design.features)


def _with_sketch(
    design: Design, index: int, sketch: SketchSpec, features: tuple[FeatureSpec, ...]
) -> Design:
    sketches = (*design.sketches[:index], sketch, *design.sketches[index + 1 :])
    return replace(design, sketches=sketches, features=features)


def _map_profiles(
    profiles: tuple[Profile, ...], f: Callable[[float, float], Vec2], mirror: bool
) -> tuple[Profile, ...]:
    """Apply a rigid map to every curve; ``mirror`` reverses arc orientation."""
    return tuple(
        Profile(
            tuple(Loop(tuple(_map_curve(c, f, mirror) for c in loop.curves)) for loop in p.loops)
        )
        for p in profiles
    )


def _map_curve(curve: Curve, f: Callable[[float, float], Vec2], mirror: bool) -> Curve:
    if isinstance(curve, Line):
        return Line(f(*curve.start), f(*curve.end))
    if isinstance(curve, Circle):
        return Circle(f(*curve.center), curve.radius)
    sweep = -curve.sweep if mirror else curve.sweep
    return Arc(f(*curve.start), f(*curve.end), f(*curve.center), curve.radius, sweep)


def reshape(
    design: Design, rng: random.Random, rates: dict[str, float], grid_step: float
) -> Design:
    """Apply the re-expressions at the given per-sketch (or per-part) rates."""
    if rng.random() < rates.get("reorient", 0.0):
        design = reorient(design, rng.choice(AXIS_ROTATIONS[1:]))
    for index in range(len(design.sketches)):
        if rng.random() < rates.get("flip_plane", 0.0):
            design = flip_sketch(design, index)
        if rng.random() < rates.get("spin_plane", 0.0):
            design = spin_sketch(design, index, rng.randint(1, 3))
        if rng.random() < rates.get("shift_origin", 0.0):
            du = rng.randint(-20, 20) * grid_step
            dv = rng.randint(-20, 20) * grid_step
            design = shift_origin(design, index, du, dv)
    return design
