"""Where ``add_sketchplane`` and ``add_sketchplane_ref`` put a sketch plane.

A relative plane is placed as OpenECAD's reader places it, in the frame the writer measured
the 2D origin in (``frames.code_frame``: OpenECAD's own rebuilt frame of the referenced
extrude's plane, unless that is a different plane): ``sameplane`` on that plane,
``extent_one``/``extent_two`` on it moved along its normal by the extrude's extent, ``line`` on
the plane through that line perpendicular to the sketch. ``angle`` turns the x axis about the
new normal and ``reverse`` flips the normal last.
"""

from __future__ import annotations

from stages.cad.model import SketchPlane, Vec2, Vec3
from stages.cad.openecad import frames as fr
from stages.cad.openecad.errors import CodeError
from stages.cad.openecad.loops import CodeLine

MM_PER_M = 1000.0
REF_TYPES = ("sameplane", "extent_one", "extent_two", "line")


def absolute_plane(origin: Vec3, normal: Vec3, x_axis: Vec3, line: int) -> SketchPlane:
    """A right-handed plane from an origin (mm), a normal and an x axis as written (rounded
    in the code, so the normal is rescaled and the x axis made perpendicular to it)."""
    if fr.norm(normal) == 0.0:
        raise CodeError(line, "sketch plane normal has zero length")
    n = fr.unit(normal)
    x = fr.sub(x_axis, fr.scale(n, fr.dot(x_axis, n)))
    if fr.norm(x) <= 1e-6 * max(1.0, fr.norm(x_axis)):
        raise CodeError(line, "sketch plane x axis is zero or along the normal")
    x = fr.unit(x)
    origin_m = (origin[0] / MM_PER_M, origin[1] / MM_PER_M, origin[2] / MM_PER_M)
    return SketchPlane(origin=origin_m, x_axis=x, y_axis=fr.cross(n, x), normal=n)


def relative_plane(
    ref_plane: SketchPlane,
    ref_extents: tuple[float, float],
    kind: str,
    origin: Vec2,
    ref_line: CodeLine | None,
    angle: float,
    reverse: bool,
    line: int,
) -> SketchPlane:
    """The plane ``add_sketchplane_ref`` describes (``ref_extents`` in mm)."""
    frame = fr.code_frame(ref_plane)
    ref_x, ref_y, ref_n = fr.unit(frame.x_axis), fr.unit(frame.y_axis), fr.unit(frame.normal)
    if kind == "line":
        if ref_line is None:
            raise CodeError(line, 'type "line" needs line= naming an earlier add_line')
        start = fr.map_2d_to_3d(frame.origin, ref_x, ref_y, *ref_line.start)
        end = fr.map_2d_to_3d(frame.origin, ref_x, ref_y, *ref_line.end)
        if start == end:
            raise CodeError(line, "the referenced line has zero length")
        line_x = fr.unit(fr.sub(end, start))
        real_origin = fr.map_2d_to_3d(start, line_x, ref_n, *origin)
        normal = fr.normal_from_x_and_y(line_x, ref_n)
        x_axis = fr.rotate_vector(line_x, normal, angle)
    else:
        base = frame.origin
        if kind == "extent_one":
            base = fr.add(base, fr.scale(ref_n, ref_extents[0]))
        elif kind == "extent_two":
            base = fr.sub(base, fr.scale(ref_n, ref_extents[1]))
        real_origin = fr.map_2d_to_3d(base, ref_x, ref_y, *origin)
        normal = ref_n
        x_axis = fr.rotate_vector(ref_x, ref_n, angle)
    return absolute_plane(real_origin, fr.neg(normal) if reverse else normal, x_axis, line)
