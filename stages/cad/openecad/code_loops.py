"""Loops read back from code: arcs through three points, curves joined into closed loops.

Code written by OpenECAD (or by us) has every loop closed and every curve in order, with
shared endpoints printed identically. A model's generated code may not, so loops are mended
the way OpenECAD's own reader mends them: a curve that meets its predecessor end to end is
turned round, and a remaining gap is closed by moving the next curve's start onto the
previous curve's end. Geometry that cannot exist (an arc through three points on one line)
is a CodeError.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from stages.cad.model import Arc, Circle, Line, Loop, Vec2
from stages.cad.openecad.errors import CodeError
from stages.cad.openecad.loops import CodeArc, CodeCircle, CodeCurve, CodeLine, points_close

MM_PER_M = 1000.0
# Three points whose triangle is flatter than this (relative) are on one line.
_COLLINEAR = 1e-12


def arc_through(start: Vec2, end: Vec2, mid: Vec2, line: int) -> CodeArc:
    """The arc from ``start`` through ``mid`` to ``end``."""
    bx, by = end[0] - start[0], end[1] - start[1]
    mx, my = mid[0] - start[0], mid[1] - start[1]
    twice_area = 2.0 * (mx * by - my * bx)
    if abs(twice_area) <= _COLLINEAR * (bx * bx + by * by + mx * mx + my * my):
        raise CodeError(line, "arc start, mid and end are on one line (or coincide)")
    m2, b2 = mx * mx + my * my, bx * bx + by * by
    ux = (by * m2 - my * b2) / twice_area
    uy = (mx * b2 - bx * m2) / twice_area
    center = (start[0] + ux, start[1] + uy)
    return CodeArc(start, end, mid, center, math.hypot(ux, uy))


def arc_sweep(arc: CodeArc) -> float:
    """Signed sweep from start to end passing through mid (positive: counter-clockwise)."""
    cx, cy = arc.center
    a_start = math.atan2(arc.start[1] - cy, arc.start[0] - cx)
    to_end = (math.atan2(arc.end[1] - cy, arc.end[0] - cx) - a_start) % math.tau
    to_mid = (math.atan2(arc.mid[1] - cy, arc.mid[0] - cx) - a_start) % math.tau
    return to_end if to_mid < to_end else to_end - math.tau


def assemble_loop(curves: Sequence[CodeCurve], line: int) -> tuple[CodeCurve, ...]:
    """The curves as one closed loop, mended as described above."""
    if not curves:
        raise CodeError(line, "loop has no curves")
    if any(isinstance(c, CodeCircle) for c in curves):
        if len(curves) > 1:
            raise CodeError(line, "a circle must be alone in its loop")
        return tuple(curves)
    chain = list(curves)
    if len(chain) > 1 and (
        points_close(chain[0].start, chain[1].start) or points_close(chain[0].start, chain[1].end)
    ):
        chain[0] = chain[0].reversed()
    for i in range(1, len(chain)):
        previous, current = chain[i - 1], chain[i]
        if not points_close(previous.end, current.start) and points_close(
            previous.end, current.end
        ):
            current = current.reversed()
        if current.start != previous.end:
            current = _moved(current, start=previous.end, line=line)
        chain[i] = current
    if chain[-1].end != chain[0].start:
        chain[-1] = _moved(chain[-1], end=chain[0].start, line=line)
    kept = [c for c in chain if not (isinstance(c, CodeLine) and c.start == c.end)]
    if len(kept) < 2 and not (kept and isinstance(kept[0], CodeArc)):
        raise CodeError(line, "loop encloses nothing")
    return tuple(kept)


def _moved(
    curve: CodeLine | CodeArc, line: int, start: Vec2 | None = None, end: Vec2 | None = None
) -> CodeLine | CodeArc:
    new_start = start if start is not None else curve.start
    new_end = end if end is not None else curve.end
    if isinstance(curve, CodeLine):
        return CodeLine(new_start, new_end)
    return arc_through(new_start, new_end, curve.mid, line)


def model_loop(curves: Sequence[CodeCurve]) -> Loop:
    """A loop of millimetre curves as model values in metres."""
    return Loop(tuple(_model_curve(c) for c in curves))


def _model_curve(curve: CodeCurve) -> Line | Arc | Circle:
    if isinstance(curve, CodeLine):
        return Line(_m(curve.start), _m(curve.end))
    if isinstance(curve, CodeCircle):
        return Circle(_m(curve.center), curve.radius / MM_PER_M)
    return Arc(
        _m(curve.start),
        _m(curve.end),
        _m(curve.center),
        curve.radius / MM_PER_M,
        arc_sweep(curve),
    )


def _m(point: Vec2) -> Vec2:
    return (point[0] / MM_PER_M, point[1] / MM_PER_M)
