"""Running a stage from its command line: arguments, SIGTERM, and exactly one ``done``.

Every stage's ``__main__`` builds an argparse parser (``OneLineParser``, so a bad argument is
one line and exit code 2) and hands its body to ``run_stage``, which turns every way a run can
end into one ``done`` event and one exit code.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

from stages.protocol.events import (
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    DoneStatus,
)
from stages.protocol.failure import StageFailed
from stages.protocol.reporter import PROGRESS_MODES, Reporter, UsageError


class StageCancelled(Exception):
    """Raised in the main thread when the stage receives SIGTERM (a cancel)."""


class OneLineParser(argparse.ArgumentParser):
    """Reports a bad argument as ``prog: message`` on stderr and exits 2 (no usage dump):
    callers (the server, scripts) read one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message}\n")


def exit_usage_json(prog: str, reason: str, detail: str) -> NoReturn:
    """End a request-time call with ``{"error": reason, "detail": detail}`` on stdout (what
    the server reads), the same line on stderr (what a person reads), and exit code 2."""
    print(json.dumps({"error": reason, "detail": detail}), flush=True)
    print(f"{prog}: {detail}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


class JsonErrorParser(argparse.ArgumentParser):
    """Reports a bad argument as a JSON ``bad_input`` error and exits 2, for the
    request-time calls whose output the server parses."""

    def error(self, message: str) -> NoReturn:
        exit_usage_json(self.prog, "bad_input", message)


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        choices=PROGRESS_MODES,
        default="auto",
        help="json lines on stdout (auto when stdout is not a terminal), a bar, or nothing",
    )


class CancelFlag:
    """SIGTERM handling. By default SIGTERM raises StageCancelled at once; a stage that must
    finish a unit of work first (training saves a checkpoint) calls ``defer()`` and polls
    ``requested`` instead."""

    def __init__(self) -> None:
        self.requested = False
        self._deferred = False

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)

    def defer(self) -> None:
        self._deferred = True

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        if not self._deferred:
            raise StageCancelled()


StageBody = Callable[[argparse.Namespace, Reporter, CancelFlag], dict[str, Any] | None]


def run_stage(
    name: str,
    parser: argparse.ArgumentParser,
    body: StageBody,
    argv: list[str] | None = None,
) -> int:
    """Parse arguments, run ``body`` and end with exactly one ``done`` event.

    ``body`` returns the stage's result object (emitted as ``result``). UsageError becomes a
    one-line message and exit code 2; SIGTERM becomes ``done``/``cancelled``; StageFailed
    becomes its result (if any) and ``done``/``failed`` with its reason, exit code 1; any other
    error becomes ``done``/``failed`` with its message.
    """
    add_progress_argument(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    try:
        reporter = Reporter(name, args.progress)
    except UsageError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    cancel = CancelFlag()
    cancel.install()
    try:
        result = body(args, reporter, cancel)
        if cancel.requested:
            raise StageCancelled()
        if result is not None:
            reporter.result(result)
        reporter.done(DoneStatus.COMPLETED)
        return EXIT_OK
    except StageCancelled:
        reporter.done(DoneStatus.CANCELLED)
        return EXIT_CANCELLED
    except UsageError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        reporter.done(DoneStatus.FAILED, error=str(exc))
        return EXIT_USAGE
    except StageFailed as exc:  # the run did not do its job: say so, with what it counted
        print(f"{name}: {exc}", file=sys.stderr)
        if exc.result is not None:
            reporter.result(exc.result)
        reporter.done(DoneStatus.FAILED, error=str(exc), reason=exc.reason)
        return EXIT_FAILED
    except Exception as exc:  # the stage failed: say why on both channels
        traceback.print_exc(file=sys.stderr)
        reporter.done(DoneStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
        return EXIT_FAILED
