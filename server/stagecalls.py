"""Short stage calls made while answering a request: checks, single renders, one pair.

Long work is a job; these are seconds-long stage processes, started the same way as jobs
(``server.jobs.process``) and read with the protocol's ``summarise_output``. Exit code 2
with ``{"error"|"detail", "field"?}`` on stdout means the request was wrong: a 422 naming
the field. Any other failure is the service's: its stderr (a traceback, server paths) goes to
the server log, and the caller gets a generic 500.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from server.config import Config
from server.http.problems import ProblemError
from server.http.redact import redactor_for
from server.jobs.process import spawn_stage
from stages.protocol.answer import summarise_output
from stages.protocol.events import EXIT_USAGE

CHECK_TIMEOUT_S = 120.0
STDERR_LOGGED_CHARS = 4000

log = logging.getLogger("server.stagecalls")


class StageCallError(Exception):
    """A short call that exited non-zero; ``payload`` is what it printed, paths redacted."""

    def __init__(self, name: str, returncode: int, payload: dict[str, Any]) -> None:
        self.name = name
        self.returncode = returncode
        self.payload = payload
        super().__init__(self.detail)

    @property
    def detail(self) -> str:
        """What the stage said was wrong; never its stderr."""
        said = self.payload.get("detail") or self.payload.get("error")
        return str(said) if said else f"the {self.name} stage failed"

    @property
    def is_usage(self) -> bool:
        return self.returncode == EXIT_USAGE


async def call_stage(
    config: Config, name: str, args: list[str], *, timeout: float = CHECK_TIMEOUT_S
) -> dict[str, Any]:
    """Run stage ``name`` (e.g. ``train.preflight``) and return the object it printed."""
    proc = await spawn_stage(config, name, args)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError as exc:
        proc.kill()
        await proc.wait()
        raise ProblemError(504, f"{name} did not answer within {timeout:.0f} s") from exc
    payload = summarise_output(out.decode(errors="replace"))
    if proc.returncode != 0:
        stderr = err.decode(errors="replace").strip()[-STDERR_LOGGED_CHARS:]
        log.warning("stage call %s exited %s: %s", name, proc.returncode, stderr or "(no stderr)")
        raise StageCallError(name, proc.returncode or -1, redactor_for(config).value(payload))
    return payload


def stage_problem(
    exc: StageCallError,
    field: str,
    *,
    field_prefix: str = "",
    what: str | None = None,
    kind: str = "invalid-value",
) -> ProblemError:
    """A failed call as a problem: the caller's mistake (exit 2) is a 422 naming the field the
    stage names (under ``field_prefix`` where the body nests the stage's options) or
    ``field``; anything else a 500 that says only where to look."""
    if not exc.is_usage:
        return ProblemError(
            500, f"the {exc.name} stage failed; see the server log", kind="stage-failed"
        )
    named = exc.payload.get("field")
    reason = exc.payload.get("error")
    return ProblemError(
        422,
        f"{what}: {exc.detail}" if what else exc.detail,
        field=f"{field_prefix}{named}" if named else field,
        kind=kind,
        **({"reason": reason} if reason else {}),
    )


async def check_or_422(
    config: Config, name: str, args: list[str], default_field: str, field_prefix: str = ""
) -> dict[str, Any]:
    """A preflight check: exit 2 becomes a 422 naming the field, other failures a 500."""
    try:
        return await call_stage(config, name, args)
    except StageCallError as exc:
        raise stage_problem(exc, default_field, field_prefix=field_prefix) from exc
