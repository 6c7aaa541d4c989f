"""Short synchronous stage calls made while answering a request (checks, single renders).

Long work is a job; these are seconds-long subprocesses whose exit code 2 with a JSON
``{"error"|"detail", "field"?}`` on stdout turns into a 422 naming what is wrong.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from server.config import REPO_ROOT
from server.problems import ProblemError

CHECK_TIMEOUT_S = 120.0


class StageCallError(Exception):
    def __init__(self, returncode: int, payload: dict[str, Any], stderr: str) -> None:
        super().__init__(payload.get("detail") or payload.get("error") or stderr)
        self.returncode = returncode
        self.payload = payload
        self.stderr = stderr


async def call_stage(
    module: str, args: list[str], *, timeout: float = CHECK_TIMEOUT_S
) -> dict[str, Any]:
    """Run ``python -m module args`` and return the JSON object it prints."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        cwd=REPO_ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError as exc:
        proc.kill()
        await proc.wait()
        raise ProblemError(504, f"{module} did not answer within {timeout:.0f} s") from exc
    stderr = err.decode(errors="replace").strip()
    payload = _last_json_object(out.decode(errors="replace"))
    if proc.returncode != 0:
        raise StageCallError(proc.returncode or -1, payload, stderr[-1000:])
    return payload


def _last_json_object(text: str) -> dict[str, Any]:
    """What a short stage call printed: a plain JSON object, or protocol events.

    From events, the ``result`` is the answer; a failed ``done`` becomes ``error`` (the
    reason of the last warning, a short machine key) and ``detail`` (the done's message).
    """
    objects = []
    for line in text.strip().splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            objects.append(value)
    events = [o for o in objects if isinstance(o.get("event"), str)]
    if not events:
        return objects[-1] if objects else {}
    payload: dict[str, Any] = {}
    for event in events:
        kind = event.pop("event")
        if kind == "result":
            payload.update(event)
        elif kind == "warning" and event.get("reason"):
            payload["error"] = event["reason"]
        elif kind == "done" and event.get("status") != "completed":
            payload.setdefault("error", event.get("status"))
            payload["detail"] = event.get("error") or payload.get("detail")
    return payload


async def check_or_422(module: str, args: list[str], default_field: str) -> dict[str, Any]:
    """A preflight check: exit 2 becomes a 422 naming the field; other failures a 500."""
    try:
        return await call_stage(module, args)
    except StageCallError as exc:
        if exc.returncode == 2:
            detail = exc.payload.get("detail") or exc.payload.get("error") or exc.stderr
            field = exc.payload.get("field") or default_field
            raise ProblemError(422, str(detail), field=field, kind="invalid-value") from exc
        raise ProblemError(500, f"{module} failed: {exc.stderr or exc}") from exc
