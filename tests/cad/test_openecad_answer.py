"""The record's answer around the code, and getting the code back out of generated text."""

from __future__ import annotations

from stages.cad.openecad import unwrap_answer, wrap_answer
from tests.conftest import OPENECAD_GOLDEN


def test_answer_is_openecads_exact_wrapping() -> None:
    code = (OPENECAD_GOLDEN / "00000007.py").read_text()
    answer = wrap_answer(code)
    assert answer == "Of course, here are the codes:\n```python\n" + code + "```"
    assert answer.endswith("\n```")


def test_unwrap_inverts_wrap_even_for_the_empty_program() -> None:
    for code in ("", (OPENECAD_GOLDEN / "00003999.py").read_text()):
        assert unwrap_answer(wrap_answer(code)) == code


def test_unwrap_tolerates_what_a_model_generates() -> None:
    assert unwrap_answer("Sure!\n```py\nX = []\n```\nHope this helps.") == "X = []\n"
    assert unwrap_answer("```python\nLoops0 = []\nCurves0_0") == "Loops0 = []\nCurves0_0"
    assert unwrap_answer("Loops0 = []\n") == "Loops0 = []\n"
