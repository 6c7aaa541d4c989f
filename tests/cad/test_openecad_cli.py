"""`python -m stages.cad code | run-code | score`, through the package's dispatcher."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stages.cad.__main__ import main
from stages.cad.commands.info import model_info
from tests.conftest import DEEPCAD_SAMPLES, OPENECAD_GOLDEN

SAMPLE = "00000330"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_code_prints_the_golden_program(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = run(capsys, "code", str(DEEPCAD_SAMPLES / f"{SAMPLE}.json"))
    assert rc == 0
    assert out == (OPENECAD_GOLDEN / f"{SAMPLE}.py").read_text()


def test_code_can_print_the_wrapped_answer(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = run(capsys, "code", "--answer", str(DEEPCAD_SAMPLES / f"{SAMPLE}.json"))
    assert rc == 0
    assert out.startswith("Of course, here are the codes:\n```python\nSketchPlane0")


def test_code_of_a_bad_file_is_one_json_error_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    rc, out = run(capsys, "code", str(bad))
    assert rc == 2
    assert json.loads(out)["error"] == "bad_json"


def test_run_code_prints_infos_keys_for_the_same_solid(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = run(capsys, "run-code", str(OPENECAD_GOLDEN / f"{SAMPLE}.py"))
    assert rc == 0
    facts = json.loads(out)
    info = model_info(str(DEEPCAD_SAMPLES / f"{SAMPLE}.json"))
    assert facts.keys() == info.keys()
    assert facts["id"] == SAMPLE
    assert facts["volume"] == pytest.approx(info["volume"], rel=1e-4)
    for got, want in zip(facts["bbox"], info["bbox"], strict=True):
        assert got == pytest.approx(want, abs=1e-6)
    assert facts["solids"] == info["solids"]


def test_run_code_of_broken_code_names_the_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("Loops0 = []\nX = __import__('os')\n")
    rc, out = run(capsys, "run-code", str(broken))
    assert rc == 2
    error = json.loads(out)
    assert error["error"] == "bad_code"
    assert error["detail"].startswith("line 2:")


def test_score_prints_scores_and_refuses_a_broken_reference(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    golden = str(OPENECAD_GOLDEN / f"{SAMPLE}.py")
    rc, out = run(capsys, "score", golden, golden, "--points", "2048")
    assert rc == 0
    scores = json.loads(out)
    assert scores["invalid"] is False
    assert scores["iou"] == pytest.approx(1.0)

    missing = str(tmp_path / "missing.py")
    rc, out = run(capsys, "score", missing, golden)
    assert rc == 0
    assert json.loads(out)["invalid"] is True
    assert "cannot read" in json.loads(out)["error"]

    rc, out = run(capsys, "score", golden, missing)
    assert rc == 2
    assert json.loads(out)["error"] == "bad_code"
