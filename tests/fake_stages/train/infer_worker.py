"""The real inference worker, which a test can hold on one request until it is killed.

With ``FAKE_INFER_HOLD_TOKENS=N`` and ``FAKE_INFER_HELD=PATH`` in its environment, a request
for exactly N new tokens writes PATH (the worker's pid) and then never answers, as a model
that generates for ever would; every other request is served for real. A test can so run a
reconstruction into its timeout without racing a clock.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

from stages.train import infer_worker

HOLD_TOKENS = "FAKE_INFER_HOLD_TOKENS"
HELD_FILE = "FAKE_INFER_HELD"


def hold_on(tokens: int, held: Path) -> None:
    handle = infer_worker.Worker.handle

    def held_handle(self: infer_worker.Worker, request: dict[str, Any]) -> dict[str, Any]:
        if request.get("max_new_tokens") == tokens:
            written = held.with_name(held.name + ".tmp")
            written.write_text(str(os.getpid()))
            written.replace(held)
            threading.Event().wait()  # until the server kills the process group
        return handle(self, request)

    infer_worker.Worker.handle = held_handle  # type: ignore[method-assign]


if __name__ == "__main__":
    if os.environ.get(HOLD_TOKENS) and os.environ.get(HELD_FILE):
        hold_on(int(os.environ[HOLD_TOKENS]), Path(os.environ[HELD_FILE]))
    sys.exit(infer_worker.main())
