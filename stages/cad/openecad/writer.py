"""CadModel -> OpenECAD v2 code, byte for byte what OpenECAD's converter writes.

One block per extrude: its sketch plane (absolute or relative to an earlier extrude, see
``planes``), its loops in DeepCAD's canonical order (see ``loops``), then sketch and extrude.
Lengths are millimetres, printed the numpy way (see ``numbers``).

Where OpenECAD's converter would write code for a different solid, the writer stays true to
the model instead (code that contradicts the rendered images would poison training): a
sketch normal with a negative x component (OpenECAD's polar round trip mirrors it) is written
as it is, and a plane is never written relative to an ``extent_one``/``extent_two`` face on the
wrong side of a negative extent. No real sample has either; every other output is OpenECAD's.
"""

from __future__ import annotations

from stages.cad.model import CadModel, ExtentType, Extrude
from stages.cad.openecad.frames import MM_PER_M, code_frame
from stages.cad.openecad.loops import CodeArc, CodeCircle, CodeCurve, CodeLine, code_loops
from stages.cad.openecad.numbers import format_scalar, format_vector
from stages.cad.openecad.planes import PlacedExtrude, sketch_plane_code


def write_code(model: CadModel) -> str:
    """The model's OpenECAD v2 program ("" for a model without extrudes)."""
    placed = [_place(extrude) for extrude in model.extrudes]
    parts: list[str] = []
    for i, (extrude, place) in enumerate(zip(model.extrudes, placed, strict=True)):
        parts.append(sketch_plane_code(i, placed))
        parts.append(f"Loops{i} = []\n")
        for j, loop in enumerate(place.loops):
            parts.append(f"Curves{i}_{j} = []\n")
            parts.extend(_curve_code(i, j, k, curve) for k, curve in enumerate(loop))
            parts.append(f"Loop{i}_{j} = add_loop(Curves{i}_{j})\n")
        parts.append(f"Profile{i} = add_profile(Loops{i})\n")
        parts.append(f"Sketch{i} = add_sketch(sketch_plane= SketchPlane{i}, profile= Profile{i})\n")
        parts.append(
            f"Extrude{i} = add_extrude(sketch= Sketch{i},\n"
            f"\toperation= {int(extrude.operation)}, type= {int(extrude.extent_type)}, "
            f"extent_one= {format_scalar(place.extent_one)}, "
            f"extent_two= {format_scalar(place.extent_two)})\n"
        )
    return "".join(parts)


def _place(extrude: Extrude) -> PlacedExtrude:
    extent_two = extrude.extent_two if extrude.extent_type == ExtentType.TWO_SIDES else 0.0
    return PlacedExtrude(
        frame=code_frame(extrude.plane),
        extent_one=extrude.extent_one * MM_PER_M,
        extent_two=extent_two * MM_PER_M,
        loops=code_loops(extrude.profile),
    )


def _curve_code(i: int, j: int, k: int, curve: CodeCurve) -> str:
    if isinstance(curve, CodeLine):
        return (
            f"Line{i}_{j}_{k} = add_line(start= {format_vector(curve.start)}, "
            f"end= {format_vector(curve.end)})\n"
        )
    if isinstance(curve, CodeArc):
        return (
            f"Arc{i}_{j}_{k} = add_arc(start= {format_vector(curve.start)}, "
            f"end= {format_vector(curve.end)}, mid= {format_vector(curve.mid)})\n"
        )
    assert isinstance(curve, CodeCircle)
    return (
        f"Circle{i}_{j}_{k} = add_circle(center= {format_vector(curve.center)}, "
        f"radius= {format_scalar(curve.radius)})\n"
    )
