"""Sketch profiles to polygons and manifold3d cross-sections.

Arcs and circles become chords whose sagitta stays under a tolerance the caller derives from
the model's size, so a washer and a rod both get as many segments as they need and no more.
Polygon vertices sit just outside the true curve so that each polygon encloses exactly the
curve's area: volumes then match an exact kernel whatever the segment count, and the
deviation from the curve stays within the chord tolerance. The profile is filled with the
even-odd rule: whichever loop is listed first, holes are holes and islands inside holes are
solid, as in DeepCAD's face construction. A loop that crosses
itself is rejected rather than silently filled.
"""

from __future__ import annotations

import math

import manifold3d
import numpy as np

from stages.cad.model import Arc, CadError, Circle, Curve, Line, Loop, Profile

MAX_CURVE_SEGMENTS = 256
# Neighbouring chords turn by at most this much: below the 30 degree feature-edge angle, so the
# facets of a curved wall are never drawn as creases.
MAX_STEP_ANGLE = math.pi / 8.0
# A loop whose even-odd area differs from its signed area by more than this share crosses itself.
SELF_INTERSECTION_AREA_SHARE = 1e-4


def segment_count(radius: float, sweep: float, chord_tol: float) -> int:
    """Chords needed so a circular arc deviates from its polygon by at most ``chord_tol``."""
    step = MAX_STEP_ANGLE
    if chord_tol < radius:
        step = min(step, 2.0 * math.acos(1.0 - chord_tol / radius))
    return min(max(math.ceil(abs(sweep) / step), 1), MAX_CURVE_SEGMENTS)


def loop_points(loop: Loop, chord_tol: float) -> np.ndarray:
    """A closed polygon (N, 2) for a chained loop: each curve's start and its interior points."""
    parts = [_curve_points(curve, chord_tol) for curve in loop.curves]
    points = np.concatenate(parts) if len(parts) > 1 else parts[0]
    if not np.all(np.isfinite(points)):
        raise CadError("degenerate", "loop has non-finite coordinates")
    return points


def estimate_vertices(profile: Profile, chord_tol: float) -> int:
    """Polygon vertex count of a profile, without building it (for complexity caps)."""
    total = 0
    for loop in profile.loops:
        for curve in loop.curves:
            if isinstance(curve, Line):
                total += 1
            elif isinstance(curve, Arc):
                total += segment_count(curve.radius, curve.sweep, chord_tol)
            else:
                total += segment_count(curve.radius, 2.0 * math.pi, chord_tol)
    return total


def profile_section(polygons: list[np.ndarray], area_tol: float) -> manifold3d.CrossSection:
    """The even-odd region of a profile's polygons; rejects self-crossing or empty loops."""
    for polygon in polygons:
        _check_simple(polygon, area_tol)
    section = manifold3d.CrossSection(polygons, manifold3d.FillRule.EvenOdd)
    if section.area() <= area_tol:
        raise CadError("degenerate", "profile encloses no area")
    return section


def _check_simple(polygon: np.ndarray, area_tol: float) -> None:
    if len(polygon) < 3:
        raise CadError("degenerate", "loop has fewer than three distinct points")
    x, y = polygon[:, 0], polygon[:, 1]
    signed = abs(0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    filled = manifold3d.CrossSection([polygon], manifold3d.FillRule.EvenOdd).area()
    if abs(filled - signed) > SELF_INTERSECTION_AREA_SHARE * signed + area_tol:
        raise CadError("self_intersecting", "a sketch loop crosses itself")
    if signed <= area_tol:
        raise CadError("degenerate", "loop encloses no area")


def _curve_points(curve: Curve, chord_tol: float) -> np.ndarray:
    if isinstance(curve, Line):
        return np.array([curve.start], dtype=np.float64)
    if isinstance(curve, Circle):
        count = segment_count(curve.radius, 2.0 * math.pi, chord_tol)
        angles = np.linspace(0.0, 2.0 * math.pi, count, endpoint=False)
        step = 2.0 * math.pi / count
        radius = curve.radius * math.sqrt(step / math.sin(step))
        return _on_circle(curve.center, radius, angles)
    count = segment_count(curve.radius, curve.sweep, chord_tol)
    angles = curve.start_angle + curve.sweep * np.arange(1, count) / count
    radius = curve.radius * _interior_radius_factor(abs(curve.sweep) / count, count)
    return np.concatenate([np.array([curve.start]), _on_circle(curve.center, radius, angles)])


def _interior_radius_factor(step: float, count: int) -> float:
    """Radius factor for an arc's interior vertices that makes its polygon (endpoints kept on
    the arc) enclose exactly the sector's area: the fan area
    ``sin(step) * (2 x + (count - 2) x**2) / 2`` equals ``count * step / 2``."""
    if count < 2:
        return 1.0
    s = math.sin(step)
    if count == 2:
        return step / s
    return (-s + math.sqrt(s * s + (count - 2) * s * count * step)) / ((count - 2) * s)


def _on_circle(center: tuple[float, float], radius: float, angles: np.ndarray) -> np.ndarray:
    return np.column_stack(
        [center[0] + radius * np.cos(angles), center[1] + radius * np.sin(angles)]
    )
