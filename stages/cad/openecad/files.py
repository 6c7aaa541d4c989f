"""Reading a code file for the CLIs: bounded, UTF-8, fenced answers accepted."""

from __future__ import annotations

from pathlib import Path

from stages.cad.openecad.answer import unwrap_answer
from stages.cad.openecad.errors import CodeError
from stages.cad.openecad.syntax import MAX_CODE_CHARS


def read_code_file(path: str | Path) -> str:
    """The code in ``path`` (a program, or a record's answer with the program fenced).

    Raises CodeError for a file that cannot be read, is not UTF-8 or is far too long to be a
    program (it is never read whole).
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(4 * MAX_CODE_CHARS + 1)
    except OSError as exc:
        raise CodeError(0, f"cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > 4 * MAX_CODE_CHARS:
        raise CodeError(0, f"{path} is larger than any program ({MAX_CODE_CHARS} characters)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CodeError(0, f"{path} is not UTF-8 text ({exc.reason})") from None
    return unwrap_answer(text)
