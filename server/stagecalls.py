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
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    try:
        value = json.loads(text)
        return value if isinstance(value, dict) else {}
    except ValueError:
        return {}


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
