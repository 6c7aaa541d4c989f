"""Runs that did not do their job: nothing succeeded, or storage refused a write.

One broken model among many is a counted warning and the run completes. A batch where every
model failed, or a write that failed (a full disk, a read-only folder), is different: what
the stage leaves behind is not what it promises, so it must not end ``completed``. The stage
raises StageFailed; ``run_stage`` then prints its result (the counts, when it has them), a
``done``/``failed`` naming the reason code, and exits 1.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

ALL_FAILED = "all_failed"
WRITE_FAILED = "write_failed"


class StageFailed(Exception):
    """The run ended without doing its job; ``reason`` is a short machine key."""

    def __init__(self, reason: str, detail: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.result = result


def count_text(counts: Mapping[str, int]) -> str:
    """``{"no_geometry": 2, "bad_json": 1}`` -> ``no_geometry 2, bad_json 1`` (largest first)."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{reason} {count}" for reason, count in ordered if count)


def require_some_succeeded(
    total: int,
    succeeded: int,
    failures: Mapping[str, int],
    *,
    unit: str = "models",
    result: dict[str, Any] | None = None,
) -> None:
    """Raise StageFailed (``all_failed``) when a non-empty batch produced nothing."""
    if total > 0 and succeeded == 0:
        reasons = count_text(failures)
        detail = f"all {total} {unit} failed" + (f" ({reasons})" if reasons else "")
        raise StageFailed(ALL_FAILED, detail, result)


@contextlib.contextmanager
def writing(path: Path, result: dict[str, Any] | None = None) -> Iterator[None]:
    """An OSError inside the block (a full disk, a read-only folder, a folder where the file
    belongs) becomes StageFailed (``write_failed``) naming ``path``."""
    try:
        yield
    except OSError as exc:
        detail = f"cannot write {path}: {exc.strerror or exc}"
        raise StageFailed(WRITE_FAILED, detail, result) from exc
