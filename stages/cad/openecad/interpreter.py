"""OpenECAD v2 code -> CadModel, by interpreting checked statements (never ``exec``).

The statements come from ``syntax`` (only the language's assignments and calls). This module
gives them meaning: values live under their names, a curve joins the most recent ``Curves``
list and a loop the most recent ``Loops`` list (the language never appends explicitly),
``add_sketchplane_ref`` resolves earlier extrudes and lines, and each ``add_extrude`` adds one
extrude to the model. Lengths in the code are millimetres; the model is in DeepCAD metres.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stages.cad.model import (
    CadModel,
    ExtentType,
    Extrude,
    Operation,
    Profile,
    SketchPlane,
)
from stages.cad.openecad.code_loops import arc_through, assemble_loop, model_loop
from stages.cad.openecad.errors import CodeError
from stages.cad.openecad.loops import CodeCircle, CodeCurve, CodeLine
from stages.cad.openecad.placement import REF_TYPES, absolute_plane, relative_plane
from stages.cad.openecad.syntax import EMPTY_LIST, Statement, parse_statements

MM_PER_M = 1000.0


def parse_code(text: str, model_id: str = "code") -> CadModel:
    """The model an OpenECAD v2 program builds; CodeError names the line and the problem."""
    run = _Run()
    for statement in parse_statements(text):
        run.execute(statement)
    return CadModel(id=model_id, extrudes=tuple(run.extrudes))


@dataclass
class _CurveSlot:
    """A named curve; mending its loop may turn or move it, and a ``line=`` reference must
    see the curve as its loop finally has it."""

    curve: CodeCurve


class _CurveList(list[_CurveSlot]):
    """A ``Curves...`` list."""


class _LoopList(list[tuple[CodeCurve, ...]]):
    """A ``Loops...`` list."""


@dataclass(frozen=True, slots=True)
class _Sketch:
    plane: SketchPlane
    profile: Profile


@dataclass(frozen=True, slots=True)
class _PlacedExtrude:
    plane: SketchPlane
    extents_mm: tuple[float, float]


@dataclass
class _Run:
    """The state of one program being interpreted."""

    names: dict[str, Any] = field(default_factory=dict)
    curves: _CurveList | None = None
    loops: _LoopList | None = None
    extrudes: list[Extrude] = field(default_factory=list)

    def execute(self, statement: Statement) -> None:
        if statement.function == EMPTY_LIST:
            value = self._empty_list(statement)
        else:
            handler = getattr(self, "_" + statement.function)
            value = handler(statement.line, **statement.args)
        self.names[statement.target] = value

    # -- lists --------------------------------------------------------------------------------

    def _empty_list(self, statement: Statement) -> Any:
        if statement.target.startswith("Curves"):
            self.curves = _CurveList()
            return self.curves
        if statement.target.startswith("Loops"):
            self.loops = _LoopList()
            return self.loops
        raise CodeError(statement.line, "only Curves... and Loops... lists may be created")

    def _lookup(self, name: str, kind: type, what: str, at: int) -> Any:
        if name not in self.names:
            raise CodeError(at, f"undefined name {name!r}")
        value = self.names[name]
        if not isinstance(value, kind):
            raise CodeError(at, f"{name!r} is not {what}")
        return value

    # -- curves and loops ---------------------------------------------------------------------

    def _add_curve(self, curve: CodeCurve, at: int) -> _CurveSlot:
        if self.curves is None:
            raise CodeError(at, "a curve comes before any Curves list")
        slot = _CurveSlot(curve)
        self.curves.append(slot)
        return slot

    def _add_line(self, at: int, start: tuple, end: tuple) -> _CurveSlot:
        return self._add_curve(CodeLine(start, end), at)

    def _add_arc(self, at: int, start: tuple, end: tuple, mid: tuple) -> _CurveSlot:
        return self._add_curve(arc_through(start, end, mid, at), at)

    def _add_circle(self, at: int, center: tuple, radius: float) -> _CurveSlot:
        if radius <= 0.0:
            raise CodeError(at, f"circle radius {radius} is not positive")
        return self._add_curve(CodeCircle(center, radius), at)

    def _add_loop(self, at: int, curves: str) -> tuple[CodeCurve, ...]:
        slots = self._lookup(curves, _CurveList, "a Curves list", at)
        loop = assemble_loop([slot.curve for slot in slots], at)
        if len(loop) == len(slots):
            for slot, curve in zip(slots, loop, strict=True):
                slot.curve = curve
        if self.loops is None:
            raise CodeError(at, "a loop comes before any Loops list")
        self.loops.append(loop)
        return loop

    def _add_profile(self, at: int, loops: str) -> Profile:
        found = self._lookup(loops, _LoopList, "a Loops list", at)
        if not found:
            raise CodeError(at, f"{loops} has no loops")
        return Profile(tuple(model_loop(loop) for loop in found))

    # -- planes, sketches, extrudes -----------------------------------------------------------

    def _add_sketchplane(self, at: int, origin: tuple, normal: tuple, x_axis: tuple) -> Any:
        return absolute_plane(origin, normal, x_axis, at)

    def _add_sketchplane_ref(
        self,
        at: int,
        extrude: str,
        origin: tuple,
        type: str,
        line: str | None = None,
        reverse: bool = False,
        angle: float = 0.0,
    ) -> SketchPlane:
        ref = self._lookup(extrude, _PlacedExtrude, "an extrude", at)
        if type not in REF_TYPES:
            raise CodeError(at, f"unknown plane type {type!r} (one of {', '.join(REF_TYPES)})")
        ref_line = None
        if type == "line" and line is not None:
            slot = self._lookup(line, _CurveSlot, "a curve", at)
            if not isinstance(slot.curve, CodeLine):
                raise CodeError(at, f"{line!r} is not a line")
            ref_line = slot.curve
        return relative_plane(ref.plane, ref.extents_mm, type, origin, ref_line, angle, reverse, at)

    def _add_sketch(
        self,
        at: int,
        sketch_plane: str,
        profile: str,
        sketch_position: tuple | None = None,
        sketch_size: float | None = None,
    ) -> _Sketch:
        plane = self._lookup(sketch_plane, SketchPlane, "a sketch plane", at)
        return _Sketch(plane, self._lookup(profile, Profile, "a profile", at))

    def _add_extrude(
        self,
        at: int,
        sketch: str,
        operation: int,
        type: int,
        extent_one: float,
        extent_two: float,
    ) -> _PlacedExtrude:
        found = self._lookup(sketch, _Sketch, "a sketch", at)
        if operation not in tuple(Operation):
            raise CodeError(at, f"operation {operation} is not 0..3")
        if type not in tuple(ExtentType):
            raise CodeError(at, f"type {type} is not 0..2")
        extent_type = ExtentType(type)
        two = extent_two if extent_type == ExtentType.TWO_SIDES else 0.0
        self.extrudes.append(
            Extrude(
                plane=found.plane,
                profile=found.profile,
                operation=Operation(operation),
                extent_type=extent_type,
                extent_one=extent_one / MM_PER_M,
                extent_two=two / MM_PER_M,
            )
        )
        return _PlacedExtrude(found.plane, (extent_one, extent_two))
