"""The error every problem with OpenECAD code becomes."""

from __future__ import annotations

from stages.cad.model import CadError


class CodeError(CadError):
    """Code that is not a valid OpenECAD v2 program: ``line`` (1-based, 0 for the text as a
    whole) and ``problem`` say where and what, for people and for counting skips."""

    def __init__(self, line: int, problem: str) -> None:
        where = f"line {line}" if line > 0 else "code"
        super().__init__("bad_code", f"{where}: {problem}")
        self.line = line
        self.problem = problem
