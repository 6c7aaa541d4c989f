"""Short stage calls made while answering a request: checks, single renders, one pair.

Long work is a job; these are seconds-long stage processes, started the same way as jobs
(``server.jobs.process``) and read with the protocol's ``summarise_output``. Exit code 2
with ``{"error"|"detail", "field"?}`` on stdout means the request was wrong: a 422 naming
the field.
"""

from __future__ import annotations

import asyncio
from typing import Any

from server.config import Config
from server.http.problems import ProblemError, invalid
from server.jobs.process import spawn_stage
from stages.protocol.answer import summarise_output
from stages.protocol.events import EXIT_USAGE

CHECK_TIMEOUT_S = 120.0


class StageCallError(Exception):
    def __init__(self, returncode: int, payload: dict[str, Any], stderr: str) -> None:
        super().__init__(payload.get("detail") or payload.get("error") or stderr)
        self.returncode = returncode
        self.payload = payload
        self.stderr = stderr

    @property
    def detail(self) -> str:
        return str(self.payload.get("detail") or self.payload.get("error") or self.stderr)

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
        stderr = err.decode(errors="replace").strip()
        raise StageCallError(proc.returncode or -1, payload, stderr[-1000:])
    return payload


async def check_or_422(
    config: Config, name: str, args: list[str], default_field: str, field_prefix: str = ""
) -> dict[str, Any]:
    """A preflight check: exit 2 becomes a 422 naming the field (under ``field_prefix``
    where the body nests the stage's options); other failures a 500."""
    try:
        return await call_stage(config, name, args)
    except StageCallError as exc:
        if exc.is_usage:
            named = exc.payload.get("field")
            field = f"{field_prefix}{named}" if named else default_field
            raise invalid(field, exc.detail) from exc
        raise ProblemError(500, f"{name} failed: {exc.stderr or exc}") from exc
