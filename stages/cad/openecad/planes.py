"""The ``SketchPlane{i} = ...`` statement: absolute, or relative to an earlier extrude.

OpenECAD tries, for each earlier extrude in order, to express the new sketch plane through
it: on the same plane (``sameplane``), on the plane moved to its ``extent_one`` or
``extent_two`` end (only when the new origin lies straight along the normal), or, for a
plane perpendicular to it, through one of its lines (``line``). The first match wins; with
none the plane is written absolutely. Tolerances, tests and their order are OpenECAD's, so
the choice (and every digit) is the same as its converter's, except that an extent face is
only used on the side its (signed) extent really reaches: OpenECAD compares distances without
sign and would put the plane on the wrong side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stages.cad.openecad import frames as fr
from stages.cad.openecad.frames import TOLERANCE, Frame
from stages.cad.openecad.loops import CodeCurve, CodeLine
from stages.cad.openecad.numbers import format_angle, format_vector


@dataclass(frozen=True, slots=True)
class PlacedExtrude:
    """What the plane search needs of an earlier extrude: its frame, extents (mm), loops."""

    frame: Frame
    extent_one: float
    extent_two: float
    loops: tuple[tuple[CodeCurve, ...], ...]


def sketch_plane_code(index: int, extrudes: Sequence[PlacedExtrude]) -> str:
    """The statement defining ``SketchPlane{index}``, ending in a newline."""
    target = extrudes[index].frame
    for ref_index in range(index):
        statement = _relative_to(index, ref_index, extrudes[ref_index], target)
        if statement is not None:
            return statement
    return _absolute(index, target)


def _absolute(index: int, frame: Frame) -> str:
    return (
        f"SketchPlane{index} = add_sketchplane(\n"
        f"\torigin= {format_vector(frame.origin)}, normal= {format_vector(frame.normal)}, "
        f"x_axis= {format_vector(frame.x_axis)})\n"
    )


def _relative_to(index: int, ref_index: int, ref: PlacedExtrude, target: Frame) -> str | None:
    plane = ref.frame
    if fr.are_parallel(target.normal, plane.normal):
        return _parallel(index, ref_index, ref, target)
    if fr.dot(target.normal, plane.normal) < TOLERANCE:
        return _through_line(index, ref_index, ref, target)
    return None


def _parallel(index: int, ref_index: int, ref: PlacedExtrude, target: Frame) -> str | None:
    """``sameplane``, ``extent_one`` or ``extent_two``, or None when none applies."""
    plane = ref.frame
    reverse = not fr.dot(target.normal, plane.normal) > 0
    offset = fr.sub(target.origin, plane.origin)
    if fr.on_plane(plane.origin, plane.x_axis, plane.y_axis, target.origin):
        kind, base = "sameplane", plane.origin
    else:
        along_normal = fr.are_parallel(offset, plane.normal)
        height = fr.dot(offset, plane.normal)
        distance = fr.plane_distance(plane.origin, plane.x_axis, plane.y_axis, target.origin)
        if (
            along_normal
            and height > 0
            and abs(distance - abs(ref.extent_one)) < TOLERANCE
            and ref.extent_one > 0  # OpenECAD misplaces the plane for a negative extent
        ):
            kind = "extent_one"
            base = fr.add(plane.origin, fr.scale(plane.normal, ref.extent_one))
        elif (
            along_normal
            and height < 0
            and abs(distance - abs(ref.extent_two)) < TOLERANCE
            and ref.extent_two > 0
        ):
            kind = "extent_two"
            base = fr.sub(plane.origin, fr.scale(plane.normal, ref.extent_two))
        else:
            return None
    origin = fr.map_3d_to_2d(base, plane.x_axis, plane.y_axis, target.origin)
    angle = fr.rotation_angle(plane.x_axis, target.x_axis, plane.normal)
    fields = f'origin = {format_vector(origin)}, type = "{kind}"'
    return _ref_statement(index, ref_index, fields, angle, reverse, " = ")


def _through_line(index: int, ref_index: int, ref: PlacedExtrude, target: Frame) -> str | None:
    """``line``: the plane through one of the earlier sketch's lines, perpendicular to it."""
    plane = ref.frame
    for j, loop in enumerate(ref.loops):
        for k, curve in enumerate(loop):
            if not isinstance(curve, CodeLine):
                continue
            start = fr.map_2d_to_3d(plane.origin, plane.x_axis, plane.y_axis, *curve.start)
            end = fr.map_2d_to_3d(plane.origin, plane.x_axis, plane.y_axis, *curve.end)
            line_x = fr.unit(fr.sub(end, start))
            line_y = plane.normal
            line_normal = fr.normal_from_x_and_y(line_x, line_y)
            reverse = not fr.dot(target.normal, line_normal) > 0
            if not fr.are_parallel(target.normal, line_normal):
                continue
            if not fr.on_plane(start, line_x, line_y, target.origin):
                continue
            origin = fr.map_3d_to_2d(start, line_x, line_y, target.origin)
            angle = fr.rotation_angle(line_x, target.x_axis, line_normal)
            fields = f'origin= {format_vector(origin)}, type= "line", line= Line{ref_index}_{j}_{k}'
            return _ref_statement(index, ref_index, fields, angle, reverse, "= ")
    return None


def _ref_statement(
    index: int, ref_index: int, fields: str, angle: float, reverse: bool, equals: str
) -> str:
    """``add_sketchplane_ref`` on ``Extrude{ref_index}`` with ``fields``, then the angle and
    ``reverse`` when they apply, written with ``equals`` (OpenECAD spaces the two kinds of
    reference differently)."""
    text = f"SketchPlane{index} = add_sketchplane_ref(\n\tExtrude{ref_index}, {fields}"
    if abs(angle) > TOLERANCE:
        text += f", angle{equals}{format_angle(angle)}"
    if reverse:
        text += f", reverse{equals}True"
    return text + ")\n"
