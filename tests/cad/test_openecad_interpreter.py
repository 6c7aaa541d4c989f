"""Reading OpenECAD v2 code back: the golden programs rebuild their models, and anything
outside the language is refused with the line and the problem."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest

from stages.cad.deepcad import load_deepcad
from stages.cad.model import Arc, CadError, Circle, Line, SketchPlane
from stages.cad.openecad import CodeError, parse_code
from stages.cad.openecad.syntax import MAX_CODE_CHARS
from tests.conftest import DEEPCAD_SAMPLES, OPENECAD_GOLDEN

SAMPLES = sorted(DEEPCAD_SAMPLES.glob("*.json"))
# Printed to 0.1 micrometre and 1e-4 per axis component.
ORIGIN_TOL_M = 1e-7
AXIS_TOL = 1e-4

ONE_BOX = """\
SketchPlane0 = add_sketchplane(
\torigin= [0., 0., 0.], normal= [0., 0., 1.], x_axis= [1., 0., 0.])
Loops0 = []
Curves0_0 = []
Line0_0_0 = add_line(start= [0., 0.], end= [10., 0.])
Line0_0_1 = add_line(start= [10., 0.], end= [10., 5.])
Line0_0_2 = add_line(start= [10., 5.], end= [0., 5.])
Line0_0_3 = add_line(start= [0., 5.], end= [0., 0.])
Loop0_0 = add_loop(Curves0_0)
Profile0 = add_profile(Loops0)
Sketch0 = add_sketch(sketch_plane= SketchPlane0, profile= Profile0)
Extrude0 = add_extrude(sketch= Sketch0,
\toperation= 0, type= 0, extent_one= 2., extent_two= 0.)
"""


def close(a: tuple[float, ...], b: tuple[float, ...], tol: float) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def same_plane(a: SketchPlane, b: SketchPlane) -> bool:
    return (
        close(a.origin, b.origin, ORIGIN_TOL_M)
        and close(a.normal, b.normal, AXIS_TOL)
        and close(a.x_axis, b.x_axis, AXIS_TOL)
        and close(a.y_axis, b.y_axis, AXIS_TOL)
    )


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_golden_code_rebuilds_the_files_model(sample: Path) -> None:
    """Every plane (absolute, sameplane, extent_one, line, reversed) lands where the file has
    it; operations, extents and curve counts match."""
    original = load_deepcad(sample)
    parsed = parse_code((OPENECAD_GOLDEN / f"{sample.stem}.py").read_text(), sample.stem)
    assert parsed.id == sample.stem
    assert len(parsed.extrudes) == len(original.extrudes)
    for got, want in zip(parsed.extrudes, original.extrudes, strict=True):
        assert same_plane(got.plane, want.plane)
        assert (got.operation, got.extent_type) == (want.operation, want.extent_type)
        assert got.extent_one == pytest.approx(want.extent_one, abs=1e-7)
        assert got.extent_two == pytest.approx(want.extent_two, abs=1e-7)
        assert sorted(len(loop.curves) for loop in got.profile.loops) == sorted(
            len(loop.curves) for loop in want.profile.loops
        )


def test_a_simple_program_gives_metres_and_closed_loops() -> None:
    model = parse_code(ONE_BOX, "box")
    (extrude,) = model.extrudes
    assert extrude.extent_one == pytest.approx(0.002)
    (loop,) = extrude.profile.loops
    assert [type(c) for c in loop.curves] == [Line] * 4
    assert loop.curves[1].start == pytest.approx((0.01, 0.0))
    for before, after in zip(loop.curves, loop.curves[1:] + loop.curves[:1], strict=True):
        assert before.end == after.start


def test_arcs_get_centre_radius_and_signed_sweep() -> None:
    code = ONE_BOX.replace(
        "Line0_0_1 = add_line(start= [10., 0.], end= [10., 5.])",
        "Arc0_0_1 = add_arc(start= [10., 0.], end= [10., 5.], mid= [12.5, 2.5])",
    )
    arc = parse_code(code).extrudes[0].profile.loops[0].curves[1]
    assert isinstance(arc, Arc)
    assert arc.center == pytest.approx((0.01, 0.0025))
    assert arc.radius == pytest.approx(0.0025)
    assert arc.sweep == pytest.approx(math.pi)
    assert arc.mid == pytest.approx((0.0125, 0.0025))


def test_positional_arguments_and_pi_expressions_are_accepted() -> None:
    code = (
        "SketchPlane0 = add_sketchplane([0, 0, 0], [0, 0, 1], [1, 0, 0])\n"
        "Loops0 = []\nCurves0_0 = []\n"
        "Circle0_0_0 = add_circle([0, 0], 2*np.pi/np.pi)\n"
        "Loop0_0 = add_loop(Curves0_0)\nProfile0 = add_profile(Loops0)\n"
        "Sketch0 = add_sketch(SketchPlane0, Profile0)\n"
        "Extrude0 = add_extrude(Sketch0, 0, 1, 3, 0)\n"
        "SketchPlane1 = add_sketchplane_ref(Extrude0, [1, 0], 'sameplane', angle=-np.pi/2)\n"
    )
    model = parse_code(code)
    (circle,) = model.extrudes[0].profile.loops[0].curves
    assert circle == Circle((0.0, 0.0), 0.002)


def test_reversed_and_gapped_curves_are_mended_like_openecads_reader() -> None:
    code = ONE_BOX.replace("[10., 5.], end= [0., 5.]", "[0., 5.], end= [10., 5.]").replace(
        "start= [0., 5.], end= [0., 0.]", "start= [0., 5.001], end= [0., 0.]"
    )
    (loop,) = parse_code(code).extrudes[0].profile.loops
    for before, after in zip(loop.curves, loop.curves[1:] + loop.curves[:1], strict=True):
        assert before.end == after.start
    assert loop.curves[2] == Line((0.01, 0.005), (0.0, 0.005))


def test_an_empty_program_has_no_extrudes() -> None:
    assert parse_code("").extrudes == ()


def test_code_error_is_a_cad_error_with_reason_and_line() -> None:
    with pytest.raises(CodeError) as info:
        parse_code(ONE_BOX.replace("Curves0_0)", "Curves9_9)"))
    assert isinstance(info.value, CadError)
    assert info.value.reason == "bad_code"
    assert info.value.line == 9
    assert "line 9" in str(info.value)
    assert "Curves9_9" in info.value.problem


HOSTILE = {
    "import": "import os\n",
    "dunder import call": "X = __import__('os')\n",
    "dunder import in an argument": "Curves0 = []\nL = add_line(__import__('os'), [0, 0])\n",
    "attribute chain": "Curves0 = []\nL = add_line([().__class__.__bases__, 0], [0, 0])\n",
    "numpy attribute other than pi": "Curves0 = []\nC = add_circle(center=[0, 0], radius=np.e)\n",
    "method call": "Curves0 = []\nCurves0.append(1)\n",
    "exec": "X = exec('1')\n",
    "eval": "X = eval('1')\n",
    "lambda": "X = (lambda: 1)\n",
    "for loop": "for i in range(10**9):\n    pass\n",
    "while loop": "while True:\n    pass\n",
    "function definition": "def add_line(start, end):\n    return 1\n",
    "subscript target": "X[0] = 1\n",
    "two targets": "A = B = []\n",
    "float overflow": "Curves0 = []\nC = add_circle(center=[0, 0], radius=1e999)\n",
    "huge number": "Curves0 = []\nC = add_circle(center=[0, 0], radius=1e300)\n",
    "huge integer": "Curves0 = []\nC = add_circle(center=[0, 0], radius=" + "9" * 400 + ")\n",
    "huge integer literal": "Curves0 = []\nC = add_circle(center=[0, 0], radius="
    + "9" * 5000
    + ")\n",
    "power": "Curves0 = []\nC = add_circle(center=[0, 0], radius=10**400)\n",
    "nested brackets": "X = " + "[" * 10_000 + "]" * 10_000 + "\n",
    "nested parentheses": "X = " + "(" * 10_000 + "1" + ")" * 10_000 + "\n",
    "deep unary minus": "Curves0 = []\nC = add_circle(center=[0, 0], radius="
    + "-" * 100_000
    + "1)\n",
    "long sum": "Curves0 = []\nC = add_circle(center=[0, 0], radius="
    + "+".join("1" * 50_000)
    + ")\n",
    "undefined name": "Loops0 = []\nLoop0 = add_loop(Curves7)\n",
    "wrong kind of name": "Loops0 = []\nCurves0 = []\nP = add_profile(Curves0)\n",
    "too many arguments": "Curves0 = []\nL = add_line([0, 0], [1, 1], [2, 2])\n",
    "missing argument": "Curves0 = []\nC = add_circle(center=[0, 0])\n",
    "unknown keyword": "Curves0 = []\nC = add_circle(center=[0, 0], radius=1, colour=2)\n",
    "argument twice": "Curves0 = []\nC = add_circle([0, 0], 1, radius=2)\n",
    "star arguments": "Curves0 = []\nC = add_circle(*[[0, 0], 1])\n",
    "wrong vector length": "Curves0 = []\nL = add_line(start=[0, 0, 0], end=[1, 1])\n",
    "string for a number": "Curves0 = []\nC = add_circle(center=[0, 0], radius='1')\n",
    "bool for a number": "Curves0 = []\nC = add_circle(center=[0, 0], radius=True)\n",
    "unknown function": "X = open('/etc/passwd')\n",
    "syntax error": "SketchPlane0 = add_sketchplane(\n",
    "curve before any list": "L = add_line(start=[0, 0], end=[1, 1])\n",
    "bad plane type": ONE_BOX + "S = add_sketchplane_ref(Extrude0, origin=[0, 0], type='up')\n",
    "line plane without line": ONE_BOX
    + "S = add_sketchplane_ref(Extrude0, origin=[0, 0], type='line')\n",
    "operation out of range": ONE_BOX.replace("operation= 0", "operation= 7"),
    "collinear arc": "Curves0 = []\nA = add_arc(start=[0, 0], end=[2, 0], mid=[1, 0])\n",
    "zero normal": "S = add_sketchplane(origin=[0, 0, 0], normal=[0, 0, 0], x_axis=[1, 0, 0])\n",
}


@pytest.mark.parametrize("code", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_or_broken_code_is_refused_cleanly(code: str) -> None:
    with pytest.raises(CodeError) as info:
        parse_code(code)
    assert info.value.problem
    assert info.value.line >= 0


def test_a_hundred_megabytes_are_refused_before_parsing() -> None:
    text = "#" * (100 * 1024 * 1024)
    with pytest.raises(CodeError, match="over the limit"):
        parse_code(text)
    with pytest.raises(CodeError):
        parse_code("X = []\n" * (MAX_CODE_CHARS // 7 + 1))


def test_error_names_the_offending_line() -> None:
    lines = ONE_BOX.splitlines()
    lines[5] = "Line0_0_1 = add_line(start= [10., 0.], end= [10., 5.], extra= 1)"
    with pytest.raises(CodeError) as info:
        parse_code("\n".join(lines))
    assert info.value.line == 6
    assert "extra" in info.value.problem


def test_text_that_python_would_warn_about_is_refused_silently() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(CodeError):
            parse_code("Curves0 = []\nC = add_circle(center=[0, 0], radius=1.x)\n")
