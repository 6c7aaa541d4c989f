"""Sketch frames and vector arithmetic exactly as OpenECAD's converter computes them.

OpenECAD (from DeepCAD's ``cadlib``) never keeps a plane's axes: it stores a frame as polar
angles (normal theta/phi, x-axis gamma, y-axis theta/phi) and rebuilds the axes from them on
every use. That round trip is lossy in ways its output depends on: a normal or y axis with a
negative x component comes back mirrored (``arctan`` instead of ``arctan2``), the x axis
snaps to the nearest 1e-6 of a cosine, and tiny negative residues print as ``-0.``. Both the
writer (to print what OpenECAD prints) and the interpreter (to place ``add_sketchplane_ref``
planes where OpenECAD places them) use the frame this module rebuilds.

Arithmetic follows numpy's order of operations, with dot products summed from ``+0.0`` as
BLAS does, so that signs of zero residues match; lengths are millimetres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from stages.cad.model import CadError, SketchPlane, Vec3
from stages.cad.openecad.numbers import np_round

# OpenECAD's tolerance for "parallel", "on the plane" and "same distance" (millimetres).
TOLERANCE = 1e-10
MM_PER_M = 1000.0
# How far OpenECAD's rebuilt axes may be from the plane's before they count as another plane:
# its normal is exact to ~1e-6 and its x axis to ~1e-3; a mirrored one is off by O(1).
FAITHFUL_NORMAL = 1e-4
FAITHFUL_X_AXIS = 1e-2


@dataclass(frozen=True, slots=True)
class Frame:
    """A sketch frame as OpenECAD rebuilds it: origin in millimetres, unit-ish axes."""

    origin: Vec3
    normal: Vec3
    x_axis: Vec3
    y_axis: Vec3


def code_frame(plane: SketchPlane) -> Frame:
    """The frame code is written (and read back) in: OpenECAD's, unless its lossy round trip
    turned the plane into a different one (a normal with a negative x component comes back
    mirrored, and so would the solid), in which case the plane's own frame.

    OpenECAD's x axis may differ from the plane's by up to ~1e-3 rad (its cosine is rounded
    to 6 decimals); that is kept, as it is what OpenECAD prints.
    """
    frame = openecad_frame(plane)
    normal_error = max(abs(a - b) for a, b in zip(frame.normal, plane.normal, strict=True))
    x_error = max(abs(a - b) for a, b in zip(frame.x_axis, plane.x_axis, strict=True))
    if normal_error <= FAITHFUL_NORMAL and x_error <= FAITHFUL_X_AXIS:
        return frame
    return Frame(frame.origin, plane.normal, plane.x_axis, plane.y_axis)


def openecad_frame(plane: SketchPlane) -> Frame:
    """The frame OpenECAD derives from a DeepCAD transform (``CoordSystem.from_dict``)."""
    origin = (plane.origin[0] * MM_PER_M, plane.origin[1] * MM_PER_M, plane.origin[2] * MM_PER_M)
    theta, phi, gamma = polar_parameterization(plane.normal, plane.x_axis)
    normal, x_axis = polar_parameterization_inverse(theta, phi, gamma)
    y_axis = from_polar(*to_polar(plane.y_axis))
    return Frame(origin, normal, x_axis, y_axis)


# -- polar parameterisation (DeepCAD's, including its arctan) ---------------------------------


def to_polar(vector: Vec3) -> tuple[float, float]:
    """Polar angles of a direction; ``phi`` uses ``arctan(y / x)``, so x < 0 flips it."""
    rounded = (np_round(vector[0], 6), np_round(vector[1], 6), np_round(vector[2], 6))
    length = norm(rounded)
    if length == 0.0:
        raise CadError("degenerate", "sketch plane axis has zero length")
    theta = math.acos(_clamp(rounded[2] / length))
    phi = math.atan(rounded[1] / (rounded[0] + 1e-15))
    return theta, phi


def from_polar(theta: float, phi: float) -> Vec3:
    sin_theta = math.sin(theta)
    return (sin_theta * math.cos(phi), sin_theta * math.sin(phi), math.cos(theta))


def polar_parameterization(normal: Vec3, x_axis: Vec3) -> tuple[float, float, float]:
    """A frame as (theta, phi) of its normal and the angle gamma of its x axis from the
    reference x axis those two give (cosine rounded to 6 decimals first, as DeepCAD does)."""
    theta, phi = to_polar(normal)
    ref_x = _reference_x(theta, phi)
    gamma = math.acos(_clamp(np_round(dot(x_axis, ref_x), 6)))
    if dot(cross(ref_x, x_axis), normal) < 0:
        gamma = -gamma
    return theta, phi, gamma


def polar_parameterization_inverse(theta: float, phi: float, gamma: float) -> tuple[Vec3, Vec3]:
    """The normal and x axis rebuilt from (theta, phi, gamma)."""
    normal = from_polar(theta, phi)
    ref_x = _reference_x(theta, phi)
    ref_y = cross(normal, ref_x)
    cos_g, sin_g = math.cos(gamma), math.sin(gamma)
    x_axis = (
        ref_x[0] * cos_g + ref_y[0] * sin_g,
        ref_x[1] * cos_g + ref_y[1] * sin_g,
        ref_x[2] * cos_g + ref_y[2] * sin_g,
    )
    return normal, x_axis


def _reference_x(theta: float, phi: float) -> Vec3:
    """The world x axis turned by theta about y, then by phi about z."""
    ct, st = math.cos(theta), math.sin(theta)
    turned_y = _matvec(((ct, 0.0, st), (0.0, 1.0, 0.0), (-st, 0.0, ct)), (1.0, 0.0, 0.0))
    cp, sp = math.cos(phi), math.sin(phi)
    return _matvec(((cp, -sp, 0.0), (sp, cp, 0.0), (0.0, 0.0, 1.0)), turned_y)


def _matvec(rows: tuple[Vec3, Vec3, Vec3], vector: Vec3) -> Vec3:
    return (dot(rows[0], vector), dot(rows[1], vector), dot(rows[2], vector))


def _clamp(value: float) -> float:
    return min(1.0, max(-1.0, value))


# -- vector arithmetic --------------------------------------------------------------------------


def dot(a: Vec3, b: Vec3) -> float:
    """Summed from +0.0 as BLAS does (so an all-negative-zero sum is +0.0)."""
    return 0.0 + a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def cross(a: Vec3, b: Vec3) -> Vec3:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def sub(a: Vec3, b: Vec3) -> Vec3:
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def scale(a: Vec3, factor: float) -> Vec3:
    return (a[0] * factor, a[1] * factor, a[2] * factor)


def add(a: Vec3, b: Vec3) -> Vec3:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


def neg(a: Vec3) -> Vec3:
    return (-a[0], -a[1], -a[2])


def norm(a: Vec3) -> float:
    return math.sqrt(dot(a, a))


def unit(a: Vec3) -> Vec3:
    length = norm(a)
    if length == 0.0:
        raise CadError("degenerate", "direction of zero length")
    return (a[0] / length, a[1] / length, a[2] / length)


def are_parallel(a: Vec3, b: Vec3) -> bool:
    return all(abs(c) < TOLERANCE for c in cross(a, b))


def plane_distance(origin: Vec3, x_axis: Vec3, y_axis: Vec3, point: Vec3) -> float:
    """Distance of ``point`` from the plane, along ``x_axis x y_axis`` (not normalised)."""
    return abs(dot(sub(point, origin), cross(x_axis, y_axis)))


def on_plane(origin: Vec3, x_axis: Vec3, y_axis: Vec3, point: Vec3) -> bool:
    return plane_distance(origin, x_axis, y_axis, point) < TOLERANCE


def map_2d_to_3d(origin: Vec3, x_axis: Vec3, y_axis: Vec3, u: float, v: float) -> Vec3:
    return (
        origin[0] + u * x_axis[0] + v * y_axis[0],
        origin[1] + u * x_axis[1] + v * y_axis[1],
        origin[2] + u * x_axis[2] + v * y_axis[2],
    )


def map_3d_to_2d(origin: Vec3, x_axis: Vec3, y_axis: Vec3, point: Vec3) -> tuple[float, float]:
    """Least-squares (u, v) of ``point`` in the frame, by the same LAPACK call as OpenECAD so
    that zero residues keep their printed sign (only runs once per written plane)."""
    matrix = np.array([x_axis, y_axis], dtype=np.float64).T
    offset = np.array(point, dtype=np.float64) - np.array(origin, dtype=np.float64)
    u, v = np.linalg.lstsq(matrix, offset, rcond=None)[0]
    return float(u), float(v)


def normal_from_x_and_y(x_axis: Vec3, y_axis: Vec3) -> Vec3:
    """The unit n with ``y = n x x``: the normal of the plane spanned by x and y."""
    candidate = unit(cross(x_axis, y_axis))
    back = cross(candidate, x_axis)
    if all(abs(b - y) <= 1e-8 + 1e-5 * abs(y) for b, y in zip(back, y_axis, strict=True)):
        return candidate
    return neg(candidate)


def rotation_angle(start: Vec3, end: Vec3, axis: Vec3) -> float:
    """Signed angle (-pi, pi] turning ``start`` into ``end`` counter-clockwise about ``axis``."""
    axis = unit(axis)
    lengths = norm(start) * norm(end)
    return math.atan2(dot(cross(start, end), axis) / lengths, dot(start, end) / lengths)


def rotate_vector(vector: Vec3, axis: Vec3, angle: float) -> Vec3:
    """``vector`` turned by ``angle`` counter-clockwise about ``axis`` (Rodrigues)."""
    axis = unit(axis)
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    turned = cross(axis, vector)
    along = dot(axis, vector)
    return (
        vector[0] * cos_a + turned[0] * sin_a + axis[0] * along * (1 - cos_a),
        vector[1] * cos_a + turned[1] * sin_a + axis[1] * along * (1 - cos_a),
        vector[2] * cos_a + turned[2] * sin_a + axis[2] * along * (1 - cos_a),
    )
