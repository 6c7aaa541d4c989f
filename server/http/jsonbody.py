"""JSON request bodies parsed within limits a hostile body cannot get past.

``json.loads`` alone turns three valid-looking inputs into server errors: an integer longer
than Python's int-string conversion limit (ValueError), nesting deeper than the interpreter's
recursion limit (RecursionError), and ``NaN``/``Infinity``, which are not JSON and which a
later ``json.dumps`` would write back as invalid JSON. Here each is a 4xx naming the body or
the field, and nesting is capped well below the recursion limit so that what is accepted can
also be written out again (job params, model files) without a RecursionError.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from server.http.problems import ProblemError, invalid

MAX_DEPTH = 64  # a DeepCAD model inside a batch body is about 12 levels deep
MAX_INT_DIGITS = sys.get_int_max_str_digits() or 4300


class _TooLong:
    """Stands in for an integer literal past the conversion limit, so its field can be named."""


_TOO_LONG = _TooLong()


def parse_json(raw: bytes) -> Any:
    """The body's JSON value; a 400 for what is not JSON, a 422 for an integer too long."""
    too_long = False

    def parse_int(text: str) -> int | _TooLong:
        nonlocal too_long
        if len(text) - text.startswith("-") > MAX_INT_DIGITS:
            too_long = True
            return _TOO_LONG
        return int(text)

    try:
        data = json.loads(raw, parse_int=parse_int, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise _too_deep() from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN/Infinity
        raise ProblemError(
            400, f"the body is not valid JSON: {exc}", field="body", kind="malformed-json"
        ) from exc
    if too_long or _may_be_deep(raw):
        _check_tree(data)
    return data


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON value")


def _too_deep() -> ProblemError:
    return ProblemError(
        400,
        f"the body nests arrays or objects more than {MAX_DEPTH} levels deep",
        field="body",
        kind="malformed-json",
    )


def _may_be_deep(raw: bytes) -> bool:
    """Cheap bound first: a body with few brackets cannot nest deeply, so most skip the walk."""
    return raw.count(b"[") + raw.count(b"{") > MAX_DEPTH


def _check_tree(data: Any) -> None:
    """Walk the parsed value without recursion: too deep is a 400, a too-long integer a 422
    naming its field as the body's validation would (``models.3.sequence``)."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if value is _TOO_LONG:
            field = ".".join(str(part) for part in path) or "body"
            raise invalid(field, f"{field}: integers may have at most {MAX_INT_DIGITS} digits")
        if isinstance(value, dict):
            children = value.items()
        elif isinstance(value, list):
            children = enumerate(value)
        else:
            continue
        if len(path) >= MAX_DEPTH:
            raise _too_deep()
        stack.extend(
            (child, (*path, key))
            for key, child in children
            if child is _TOO_LONG or isinstance(child, dict | list)
        )
