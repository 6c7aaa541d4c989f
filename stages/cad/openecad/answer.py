"""The assistant turn around the code, as OpenECAD's ``json2dataset.py`` writes it."""

from __future__ import annotations

import re

ANSWER_PREFIX = "Of course, here are the codes:\n"
_FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\r?\n?", re.IGNORECASE)


def wrap_answer(code: str) -> str:
    """``code`` as the record's answer (the code ends with a newline, so the closing fence
    starts its own line)."""
    return f"{ANSWER_PREFIX}```python\n{code}```"


def unwrap_answer(answer: str) -> str:
    """The code inside an answer: between the first fence and the next one (or the end, for a
    generation cut short); text without a fence is taken as code as it is."""
    opening = _FENCE.search(answer)
    if opening is None:
        return answer
    body = answer[opening.end() :]
    closing = body.find("```")
    return body if closing < 0 else body[:closing]
