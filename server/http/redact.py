"""Stage text made fit for a response: no absolute server path, no traceback.

Stages are handed absolute paths (dataset folders, scratch folders, checkpoints) and repeat
them in details, errors and results; a crash leaves a traceback in the stderr tail that
becomes a job's error. A caller knows the service's files by the var-relative names the API
uses (``data/training/<name>/train.json``), so a path under the var folder (or the
repository) is shown relative to it, any other absolute path by its last part, and a
traceback by its final line. The server log and the job log keep the full text.
"""

from __future__ import annotations

import functools
import re
from typing import TypeVar

from server.config import REPO_ROOT, Config

T = TypeVar("T")

# An absolute path starts at the beginning of the text or after a space, quote, bracket or
# '='; it ends at the next space, quote, bracket, comma or semicolon.
_ABSOLUTE_PATH = re.compile(r"""(?:^|(?<=[\s'"(\[{=]))/[^\s'"()\[\]{},;]*""")
_TRACEBACK = "Traceback (most recent call last):"


class Redactor:
    def __init__(self, roots: tuple[str, ...]) -> None:
        # Longest first, so a var folder inside the repository is cut at the var folder.
        self.roots = tuple(sorted({r.rstrip("/") for r in roots if r != "/"}, key=len)[::-1])

    def text(self, text: str) -> str:
        """``text`` with every absolute path shortened and any traceback cut to its last line."""
        if _TRACEBACK in text:
            before, _, trace = text.partition(_TRACEBACK)
            lines = [line.strip() for line in trace.splitlines() if line.strip()]
            text = f"{before.rstrip()} {lines[-1] if lines else ''}".strip()
        return _ABSOLUTE_PATH.sub(self._shorten, text)

    def value(self, value: T) -> T:
        """The same for every string inside a JSON value (a job's result, an event's data)."""
        if isinstance(value, str):
            return self.text(value)  # type: ignore[return-value]
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}  # type: ignore[return-value]
        if isinstance(value, list):
            return [self.value(v) for v in value]  # type: ignore[return-value]
        return value

    def _shorten(self, match: re.Match[str]) -> str:
        path = match.group(0)
        for root in self.roots:
            if path == root:
                return "."
            if path.startswith(root + "/"):
                return path[len(root) + 1 :]
        return "…/" + path.rstrip("/").rsplit("/", 1)[-1]


@functools.cache
def redactor_for(config: Config) -> Redactor:
    """The redactor of one configuration (its var folder, resolved and as given)."""
    var = config.var_dir
    return Redactor((str(var.resolve()), str(var.absolute()), str(REPO_ROOT)))
