"""OpenECAD v2 text -> checked statements, with ``ast`` and never ``exec`` or ``eval``.

The language is a list of assignments ``Name = add_xxx(...)`` or ``Name = []``. This module
accepts exactly that: each call's arguments are bound to the function's parameters like
Python would (positional or keyword), and every argument is read as the kind of value the
parameter takes (a number, a 2- or 3-vector, a string, a bool, or the name of an earlier
value). Numbers may be written with ``np.pi`` and + - * /. Nothing else is evaluated: no
imports, calls other than the language's, attribute access other than ``np.pi``, loops or
other names. Size and nesting limits keep hostile text from exhausting the parser.
"""

from __future__ import annotations

import ast
import math
import re
import warnings
from dataclasses import dataclass
from typing import Any

from stages.cad.openecad.errors import CodeError

MAX_CODE_CHARS = 1_000_000
MAX_STATEMENTS = 20_000
MAX_BRACKET_DEPTH = 16
MAX_EXPRESSION_DEPTH = 16
# Millimetres: 1 km. Real parts are under 2 m; anything beyond this is not a part.
MAX_MAGNITUDE = 1e6

_BRACKETS = re.compile(r"[\[\](){}]")
_OPENING = frozenset("([{")


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter: its name, the kind of value it takes, and whether it may be left out."""

    name: str
    kind: str  # "number", "int", "vec2", "vec3", "str", "bool", "name"
    required: bool = True


SIGNATURES: dict[str, tuple[Param, ...]] = {
    "add_sketchplane": (Param("origin", "vec3"), Param("normal", "vec3"), Param("x_axis", "vec3")),
    "add_sketchplane_ref": (
        Param("extrude", "name"),
        Param("origin", "vec2"),
        Param("type", "str"),
        Param("line", "name", required=False),
        Param("reverse", "bool", required=False),
        Param("angle", "number", required=False),
    ),
    "add_line": (Param("start", "vec2"), Param("end", "vec2")),
    "add_arc": (Param("start", "vec2"), Param("end", "vec2"), Param("mid", "vec2")),
    "add_circle": (Param("center", "vec2"), Param("radius", "number")),
    "add_loop": (Param("curves", "name"),),
    "add_profile": (Param("loops", "name"),),
    "add_sketch": (
        Param("sketch_plane", "name"),
        Param("profile", "name"),
        Param("sketch_position", "vec3", required=False),
        Param("sketch_size", "number", required=False),
    ),
    "add_extrude": (
        Param("sketch", "name"),
        Param("operation", "int"),
        Param("type", "int"),
        Param("extent_one", "number"),
        Param("extent_two", "number"),
    ),
}

EMPTY_LIST = "[]"


@dataclass(frozen=True, slots=True)
class Statement:
    """``target = function(**args)``; ``function`` is ``EMPTY_LIST`` for ``target = []``.
    Name arguments are kept as the names (strings) for the interpreter to resolve."""

    line: int
    target: str
    function: str
    args: dict[str, Any]


def parse_statements(text: str) -> list[Statement]:
    """Check ``text`` and return its statements in order; raise CodeError on anything else."""
    if not isinstance(text, str):
        raise CodeError(0, f"code must be text, not {type(text).__name__}")
    if len(text) > MAX_CODE_CHARS:
        raise CodeError(0, f"code is {len(text)} characters, over the limit of {MAX_CODE_CHARS}")
    _check_nesting(text)
    try:
        with warnings.catch_warnings():  # e.g. "invalid decimal literal": the text is data
            warnings.simplefilter("ignore")
            module = ast.parse(text, mode="exec")
    except SyntaxError as exc:
        raise CodeError(exc.lineno or 0, f"syntax error: {exc.msg}") from None
    except (MemoryError, RecursionError, ValueError) as exc:
        raise CodeError(0, f"too complex to parse ({type(exc).__name__})") from None
    if len(module.body) > MAX_STATEMENTS:
        raise CodeError(0, f"{len(module.body)} statements, over the limit of {MAX_STATEMENTS}")
    return [_statement(node) for node in module.body]


def _check_nesting(text: str) -> None:
    depth = 0
    for match in _BRACKETS.finditer(text):
        depth += 1 if match.group() in _OPENING else -1
        if depth > MAX_BRACKET_DEPTH:
            line = text.count("\n", 0, match.start()) + 1
            raise CodeError(line, f"brackets nested deeper than {MAX_BRACKET_DEPTH}")


def _statement(node: ast.stmt) -> Statement:
    line = node.lineno
    if not isinstance(node, ast.Assign):
        raise CodeError(line, f"only assignments are allowed, not {_describe(node)}")
    if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
        raise CodeError(line, "assign to exactly one plain name")
    target = node.targets[0].id
    value = node.value
    if isinstance(value, ast.List) and not value.elts:
        return Statement(line, target, EMPTY_LIST, {})
    if not isinstance(value, ast.Call) or not isinstance(value.func, ast.Name):
        raise CodeError(line, f"the value must be an add_...() call or [], not {_describe(value)}")
    function = value.func.id
    if function not in SIGNATURES:
        raise CodeError(line, f"unknown function {function!r}")
    return Statement(line, target, function, _bind(function, value, line))


def _bind(function: str, call: ast.Call, line: int) -> dict[str, Any]:
    """Arguments by parameter name, as Python would bind them, each read as its kind."""
    params = SIGNATURES[function]
    by_name = {p.name: p for p in params}
    if any(isinstance(arg, ast.Starred) for arg in call.args):
        raise CodeError(line, f"{function}: *arguments are not allowed")
    if len(call.args) > len(params):
        raise CodeError(
            line, f"{function} takes at most {len(params)} arguments, got {len(call.args)}"
        )
    nodes: dict[str, ast.expr] = {p.name: arg for p, arg in zip(params, call.args, strict=False)}
    for keyword in call.keywords:
        if keyword.arg is None:
            raise CodeError(line, f"{function}: **arguments are not allowed")
        if keyword.arg not in by_name:
            raise CodeError(line, f"{function} has no argument {keyword.arg!r}")
        if keyword.arg in nodes:
            raise CodeError(line, f"{function}: argument {keyword.arg!r} given twice")
        nodes[keyword.arg] = keyword.value
    missing = [p.name for p in params if p.required and p.name not in nodes]
    if missing:
        raise CodeError(line, f"{function} is missing argument {missing[0]!r}")
    return {
        name: _read(node, by_name[name].kind, f"{function}({name}=...)", line)
        for name, node in nodes.items()
    }


# -- values -------------------------------------------------------------------------------------


def _read(node: ast.expr, kind: str, where: str, line: int) -> Any:
    if kind == "number":
        return _number(node, where, line, 0)
    if kind in ("vec2", "vec3"):
        return _vector(node, 2 if kind == "vec2" else 3, where, line)
    if kind == "int":
        value = _number(node, where, line, 0)
        if not value.is_integer():
            raise CodeError(line, f"{where}: expected a whole number, got {value}")
        return int(value)
    if kind == "str":
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        raise CodeError(line, f"{where}: expected a string, not {_describe(node)}")
    if kind == "bool":
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            return node.value
        raise CodeError(line, f"{where}: expected True or False, not {_describe(node)}")
    if isinstance(node, ast.Name):
        return node.id
    raise CodeError(line, f"{where}: expected a name, not {_describe(node)}")


def _vector(node: ast.expr, size: int, where: str, line: int) -> tuple[float, ...]:
    if not isinstance(node, ast.List | ast.Tuple):
        raise CodeError(line, f"{where}: expected [{size} numbers], not {_describe(node)}")
    if len(node.elts) != size:
        raise CodeError(line, f"{where}: expected {size} numbers, got {len(node.elts)}")
    return tuple(_number(item, where, line, 1) for item in node.elts)


def _number(node: ast.expr, where: str, line: int, depth: int) -> float:
    """A number: a literal, ``np.pi``, or + - * / of numbers, finite and not huge."""
    if depth > MAX_EXPRESSION_DEPTH:
        raise CodeError(line, f"{where}: expression nested too deeply")
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CodeError(line, f"{where}: expected a number, not {_describe(node)}")
        return _bounded(value, where, line)
    if isinstance(node, ast.Attribute):
        if isinstance(node.value, ast.Name) and node.value.id == "np" and node.attr == "pi":
            return math.pi
        raise CodeError(line, f"{where}: only np.pi may be used, not {ast.unparse(node)[:40]}")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _number(node.operand, where, line, depth + 1)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub | ast.Mult | ast.Div):
        left = _number(node.left, where, line, depth + 1)
        right = _number(node.right, where, line, depth + 1)
        return _bounded(_arithmetic(node.op, left, right, where, line), where, line)
    raise CodeError(line, f"{where}: expected a number, not {_describe(node)}")


def _arithmetic(op: ast.operator, left: float, right: float, where: str, line: int) -> float:
    if isinstance(op, ast.Add):
        return left + right
    if isinstance(op, ast.Sub):
        return left - right
    if isinstance(op, ast.Mult):
        return left * right
    if right == 0.0:
        raise CodeError(line, f"{where}: division by zero")
    return left / right


def _bounded(value: float, where: str, line: int) -> float:
    if isinstance(value, float) and not math.isfinite(value):
        raise CodeError(line, f"{where}: number is not finite")
    if abs(value) > MAX_MAGNITUDE:
        raise CodeError(line, f"{where}: number {_short(value)} is beyond {MAX_MAGNITUDE:g}")
    return float(value)


def _short(value: float) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    digits = str(abs(value))
    return digits if len(digits) <= 12 else f"of {len(digits)} digits"


def _describe(node: ast.AST) -> str:
    """A short name for what was found, for error messages."""
    if isinstance(node, ast.Call):
        return "a call of " + (ast.unparse(node.func)[:40] if node.func else "?")
    if isinstance(node, ast.Name):
        return f"the name {node.id!r}"
    if isinstance(node, ast.Constant):
        return f"the value {node.value!r:.40}"
    return type(node).__name__
