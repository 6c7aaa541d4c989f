"""Generated code is scored against the record's answer; bad command lines exit 2."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from stages.protocol import Reporter
from stages.train.data import Record
from stages.train.evaluate import main, score_records, summarize_rows
from stages.train.tinyllava.generate import Generation
from tests.conftest import OPENECAD_GOLDEN, REPO_ROOT

GOLDEN = ("00000007", "00000061")


def records() -> list[Record]:
    return [
        Record(
            name,
            Path("unused.png"),
            "<image>\nDraw it.",
            (OPENECAD_GOLDEN / f"{name}.py").read_text(),
        )
        for name in GOLDEN
    ]


def reporter() -> Reporter:
    return Reporter("evaluate", mode="json", out=io.StringIO())


def test_a_perfect_model_scores_full_marks() -> None:
    rows = score_records(
        records(), lambda r: (f"```python\n{r.answer}```", Generation([1], True)), reporter()
    )
    summary = summarize_rows(rows)
    assert summary["count"] == 2
    assert summary["invalid_ratio"] == 0.0
    assert summary["parse_rate"] == summary["stop_rate"] == 1.0
    assert summary["iou"]["mean"] == pytest.approx(1.0)
    assert summary["curve_accuracy"]["mean"] == summary["loop_accuracy"]["mean"] == 1.0


def test_unparsable_output_counts_as_invalid() -> None:
    rows = score_records(
        records(), lambda r: ("Of course, here", Generation([7, 8], False)), reporter()
    )
    summary = summarize_rows(rows)
    assert summary["invalid_ratio"] == 1.0
    assert summary["parse_rate"] == summary["stop_rate"] == 0.0
    assert summary["iou"]["count"] == 0
    assert summary["mean_new_tokens"] == 2


def test_a_reference_that_does_not_build_is_a_counted_warning() -> None:
    broken = Record("broken", Path("unused.png"), "<image>\nDraw it.", "Extrude0 = add_extrude(")
    report = reporter()
    rows = score_records([broken, *records()], lambda r: (r.answer, Generation([], True)), report)
    assert [row["id"] for row in rows] == list(GOLDEN)
    assert report.skip_reasons == {"bad_reference": 1}


def run_cli(arguments: list[str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "stages.train.evaluate", "--progress", "none", *arguments]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--checkpoint", "x", "--dataset", ".", "--samples", "0"], "--samples must be at least 1"),
        (["--checkpoint", "x"], "the following arguments are required: --dataset"),
    ],
)
def test_the_command_answers_bad_input_in_one_line_with_exit_2(arguments, message) -> None:
    done = run_cli(arguments)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.fixture
def keep_sigterm():
    """The stage installs its own SIGTERM handler; put pytest's back."""
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--adapter", "."], "holds no adapter_config.json"),
        (["--dataset", "no-such-dir"], "val.json not found"),
        ([], "neither a local directory nor in the local model cache"),
    ],
)
def test_unusable_inputs_are_usage_errors(tmp_path, capsys, keep_sigterm, arguments, message):
    (tmp_path / "val.json").write_text("[]")
    options = {"--checkpoint": "nobody/nothing-here", "--dataset": str(tmp_path)}
    options.update(zip(arguments[::2], arguments[1::2], strict=True))
    argv = ["--progress", "none", *(item for pair in options.items() for item in pair)]
    assert main(argv) == 2
    stderr = capsys.readouterr().err
    assert message in stderr
    assert len(stderr.strip().splitlines()) == 1
