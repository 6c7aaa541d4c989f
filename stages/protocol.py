"""The stage protocol: how a stage tells its caller what it is doing.

A stage writes one JSON object per line to stdout (``start``, ``progress``, ``warning``,
``metric``, ``result``, ``done``) and human-readable logs to stderr. At a terminal the same
stage shows a progress bar instead. The server reads these lines; nothing here knows of HTTP.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import IO, Any

PROGRESS_MODES = ("auto", "json", "bar", "none")
EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_CANCELLED = 130

log = logging.getLogger("stages")


class StageCancelled(Exception):
    """Raised in the main thread when the stage receives SIGTERM (a cancel)."""


class UsageError(Exception):
    """Bad input given to a stage: reported as one line and exit code 2."""


def _clean(value: Any) -> Any:
    """Make a value strict-JSON safe (NaN and infinities become null)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


class Reporter:
    """Emits protocol events, or drives a progress bar, for one stage run.

    Counters (``succeeded``, ``failed``, ``warnings``) live here so every stage reports them
    the same way; ``progress`` events are throttled to a few per second.
    """

    def __init__(
        self,
        stage: str,
        mode: str = "auto",
        out: IO[str] | None = None,
        min_interval: float = 0.25,
    ) -> None:
        self.stage = stage
        self.out = out if out is not None else sys.stdout
        if mode == "auto":
            mode = "bar" if self.out.isatty() else "json"
        if mode not in PROGRESS_MODES:
            raise UsageError(f"unknown progress mode {mode!r}")
        self.mode = mode
        self.min_interval = min_interval
        self.total = 0
        self.current = 0
        self.succeeded = 0
        self.failed = 0
        self.warnings = 0
        self.extra: dict[str, Any] = {}
        self.skip_reasons: dict[str, int] = {}
        self._last_progress = 0.0
        self._bar: Any = None
        self._finished = False

    # -- raw events ----
    def emit(self, event: str, **fields: Any) -> None:
        if self.mode != "json":
            return
        line = json.dumps(_clean({"event": event, **fields}), separators=(",", ":"))
        self.out.write(line + "\n")
        self.out.flush()

    # -- lifecycle ----
    def start(self, total: int, unit: str = "items") -> None:
        self.total = int(total)
        self.emit("start", stage=self.stage, total=self.total, unit=unit)
        if self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, unit=f" {unit}", desc=self.stage, file=sys.stderr)

    def advance(self, ok: bool = True, n: int = 1, **extra: Any) -> None:
        """Count ``n`` finished items and report progress (throttled)."""
        self.current += n
        if ok:
            self.succeeded += n
        else:
            self.failed += n
        for key, value in extra.items():
            self.extra[key] = self.extra.get(key, 0) + value
        if self._bar is not None:
            self._bar.update(n)
        self.progress()

    def progress(self, force: bool = False, **extra: Any) -> None:
        self.extra.update(extra)
        now = time.monotonic()
        if not force and now - self._last_progress < self.min_interval:
            return
        self._last_progress = now
        fields: dict[str, Any] = {
            "current": self.current,
            "total": self.total,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "warnings": self.warnings,
        }
        if self.extra:
            fields["extra"] = dict(self.extra)
        self.emit("progress", **fields)

    def warning(self, item: str, message: str, reason: str | None = None) -> None:
        """One item skipped or suspicious; ``reason`` is a short machine key counted per kind."""
        self.warnings += 1
        if reason:
            self.skip_reasons[reason] = self.skip_reasons.get(reason, 0) + 1
        self.emit("warning", item=item, message=message, **({"reason": reason} if reason else {}))
        if self.mode != "json":
            log.warning("%s: %s", item, message)

    def metric(self, **fields: Any) -> None:
        self.emit("metric", **fields)
        if self._bar is not None:
            shown = {k: v for k, v in fields.items() if isinstance(v, int | float)}
            self._bar.set_postfix(shown, refresh=False)

    def result(self, result: dict[str, Any]) -> None:
        self.progress(force=True)
        if self.mode == "json":
            self.emit("result", **result)
        elif self.mode == "bar":
            self._close_bar()
            self.out.write(json.dumps(_clean(result), indent=2) + "\n")

    def done(self, status: str = "completed", error: str | None = None) -> None:
        if self._finished:
            return
        self._finished = True
        self._close_bar()
        self.emit("done", status=status, **({"error": error} if error else {}))

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


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


def run_stage(
    name: str,
    parser: argparse.ArgumentParser,
    body: Callable[[argparse.Namespace, Reporter, CancelFlag], dict[str, Any] | None],
    argv: list[str] | None = None,
) -> int:
    """Parse arguments, run ``body`` and end with exactly one ``done`` event.

    ``body`` returns the stage's result object (emitted as ``result``). UsageError becomes a
    one-line message and exit code 2; SIGTERM becomes ``done``/``cancelled``; any other error
    becomes ``done``/``failed`` with its message.
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
        reporter.done("completed")
        return 0
    except StageCancelled:
        reporter.done("cancelled")
        return EXIT_CANCELLED
    except UsageError as exc:
        message = f"{name}: {exc}"
        print(message, file=sys.stderr)
        reporter.done("failed", error=str(exc))
        return EXIT_USAGE
    except Exception as exc:  # the stage failed: say why on both channels
        traceback.print_exc(file=sys.stderr)
        reporter.done("failed", error=f"{type(exc).__name__}: {exc}")
        return EXIT_FAILED
