"""The writing side of the protocol: a stage's events, or a progress bar at a terminal."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import IO, Any

from stages.protocol.events import EventName, clean_json, encode_event

PROGRESS_MODES = ("auto", "json", "bar", "none")

log = logging.getLogger("stages")


class UsageError(Exception):
    """Bad input given to a stage: reported as one line and exit code 2."""


class Reporter:
    """Emits protocol events, or drives a progress bar, for one stage run.

    Counters (``succeeded``, ``failed``, ``warnings``) live here so every stage reports them
    the same way; ``progress`` events are throttled to a few per second. ``reused`` counts
    items an earlier attempt did (a resumed run counts them done without work), so time
    estimates measure only the work this attempt really does.
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
        self.reused = 0
        self.extra: dict[str, Any] = {}
        self.skip_reasons: dict[str, int] = {}
        self._last_progress = 0.0
        self._bar: Any = None
        self._finished = False

    # -- raw events ----
    def emit(self, event: str, **fields: Any) -> None:
        if self.mode != "json":
            return
        self.out.write(encode_event(event, **fields) + "\n")
        self.out.flush()

    # -- lifecycle ----
    def start(self, total: int, unit: str = "items") -> None:
        self.total = int(total)
        self.emit(EventName.START, stage=self.stage, total=self.total, unit=unit)
        if self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, unit=f" {unit}", desc=self.stage, file=sys.stderr)

    def advance(self, ok: bool = True, n: int = 1, reused: bool = False, **extra: Any) -> None:
        """Count ``n`` finished items (``reused``: done by an earlier attempt) and report
        progress (throttled)."""
        self.current += n
        if reused:
            self.reused += n
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
        if self.reused:
            fields["reused"] = self.reused
        if self.extra:
            fields["extra"] = dict(self.extra)
        self.emit(EventName.PROGRESS, **fields)

    def warning(self, item: str, message: str, reason: str | None = None) -> None:
        """One item skipped or suspicious; ``reason`` is a short machine key counted per kind."""
        self.warnings += 1
        if reason:
            self.skip_reasons[reason] = self.skip_reasons.get(reason, 0) + 1
        extra = {"reason": reason} if reason else {}
        self.emit(EventName.WARNING, item=item, message=message, **extra)
        if self.mode != "json":
            log.warning("%s: %s", item, message)

    def metric(self, **fields: Any) -> None:
        self.emit(EventName.METRIC, **fields)
        if self._bar is not None:
            shown = {k: v for k, v in fields.items() if isinstance(v, int | float)}
            self._bar.set_postfix(shown, refresh=False)

    def result(self, result: dict[str, Any]) -> None:
        self.progress(force=True)
        if self.mode == "json":
            self.emit(EventName.RESULT, **result)
        elif self.mode == "bar":
            self._close_bar()
            self.out.write(json.dumps(clean_json(result), indent=2) + "\n")

    def done(
        self, status: str = "completed", error: str | None = None, reason: str | None = None
    ) -> None:
        """The last event; ``reason`` is the machine key of a failure (``write_failed``)."""
        if self._finished:
            return
        self._finished = True
        self._close_bar()
        fields = {"error": error} if error else {}
        if reason:
            fields["reason"] = reason
        self.emit(EventName.DONE, status=status, **fields)

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
