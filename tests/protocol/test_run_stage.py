"""``run_stage``: every way a stage's body can end is one ``done`` event and one exit code."""

from __future__ import annotations

import argparse
import json
import os
import signal
from collections.abc import Callable, Iterator

import pytest

from stages.protocol import (
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CancelFlag,
    OneLineParser,
    Reporter,
    StageCancelled,
    StageFailed,
    UsageError,
    require_some_succeeded,
    run_stage,
)

Body = Callable[[argparse.Namespace, Reporter, CancelFlag], dict | None]


@pytest.fixture(autouse=True)
def keep_sigterm() -> Iterator[None]:
    """run_stage installs its SIGTERM handler in this process: put pytest's back."""
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


def run(body: Body, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list, str]:
    parser = OneLineParser(prog="stage")
    parser.add_argument("--size", type=int, default=1)
    code = run_stage("demo", parser, body, ["--progress", "json", *argv])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_a_result_then_done_completed(capsys: pytest.CaptureFixture[str]) -> None:
    def body(args: argparse.Namespace, reporter: Reporter, cancel: CancelFlag) -> dict:
        reporter.start(args.size, unit="models")
        reporter.advance()
        return {"made": args.size}

    code, events, _ = run(body, capsys, "--size", "1")
    assert code == EXIT_OK
    assert [e["event"] for e in events] == ["start", "progress", "progress", "result", "done"]
    assert events[-2] == {"event": "result", "made": 1}
    assert events[-1] == {"event": "done", "status": "completed"}


def test_no_result_is_only_done(capsys: pytest.CaptureFixture[str]) -> None:
    code, events, _ = run(lambda args, reporter, cancel: None, capsys)
    assert code == EXIT_OK and events == [{"event": "done", "status": "completed"}]


def test_bad_input_is_one_line_exit_2_and_done_failed(capsys: pytest.CaptureFixture[str]) -> None:
    def body(args: argparse.Namespace, reporter: Reporter, cancel: CancelFlag) -> dict:
        raise UsageError("--size is too large")

    code, events, err = run(body, capsys)
    assert code == EXIT_USAGE
    assert err.strip().splitlines() == ["demo: --size is too large"]
    assert events == [{"event": "done", "status": "failed", "error": "--size is too large"}]


def test_an_error_is_done_failed_with_its_message(capsys: pytest.CaptureFixture[str]) -> None:
    def body(args: argparse.Namespace, reporter: Reporter, cancel: CancelFlag) -> dict:
        raise ValueError("the disk is full")

    code, events, err = run(body, capsys)
    assert code == EXIT_FAILED
    error = "ValueError: the disk is full"
    assert events == [{"event": "done", "status": "failed", "error": error}]
    assert "Traceback" in err, "the traceback goes to stderr for a person"


def test_a_run_that_did_not_do_its_job_is_its_result_then_done_failed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def body(args: argparse.Namespace, reporter: Reporter, cancel: CancelFlag) -> dict:
        require_some_succeeded(3, 0, {"no_geometry": 2, "bad_json": 1}, result={"made": 0})
        return {"made": 0}

    code, events, err = run(body, capsys)
    assert code == EXIT_FAILED
    error = "all_failed: all 3 models failed (no_geometry 2, bad_json 1)"
    assert events[-2:] == [
        {"event": "result", "made": 0},
        {"event": "done", "status": "failed", "error": error, "reason": "all_failed"},
    ]
    assert err.strip().splitlines() == [f"demo: {error}"]


def test_a_stage_failed_without_a_result_is_only_done(capsys: pytest.CaptureFixture[str]) -> None:
    def body(args: argparse.Namespace, reporter: Reporter, cancel: CancelFlag) -> dict:
        raise StageFailed("write_failed", "cannot write out.json: No space left on device")

    code, events, _ = run(body, capsys)
    assert code == EXIT_FAILED and [e["event"] for e in events] == ["done"]
    assert events[0]["reason"] == "write_failed"


def test_sigterm_is_done_cancelled(capsys: pytest.CaptureFixture[str]) -> None:
    reached: list[str] = []

    def body(args: argparse.Namespace, reporter: Reporter, cancel: CancelFlag) -> dict:
        os.kill(os.getpid(), signal.SIGTERM)  # the handler raises StageCancelled here
        reached.append("after the signal")
        return {"made": 1}

    code, events, _ = run(body, capsys)
    assert code == EXIT_CANCELLED and reached == []
    assert events == [{"event": "done", "status": "cancelled"}]


def test_stage_cancelled_raised_by_the_body_is_cancelled(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def body(args: argparse.Namespace, reporter: Reporter, cancel: CancelFlag) -> dict:
        raise StageCancelled()

    code, events, _ = run(body, capsys)
    assert code == EXIT_CANCELLED and events == [{"event": "done", "status": "cancelled"}]


def test_a_deferred_cancel_lets_the_body_finish_but_ends_cancelled(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def body(args: argparse.Namespace, reporter: Reporter, cancel: CancelFlag) -> dict:
        cancel.defer()
        os.kill(os.getpid(), signal.SIGTERM)
        assert cancel.requested, "the body sees the request and winds down"
        return {"saved": True}

    code, events, _ = run(body, capsys)
    assert code == EXIT_CANCELLED
    assert events == [{"event": "done", "status": "cancelled"}], "no result for a cancelled run"


def test_a_bad_argument_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        run(lambda args, reporter, cancel: None, capsys, "--size", "many")
    assert ended.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--size" in err
