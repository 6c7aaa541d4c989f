"""Shared helpers for the training tests: the CLI run in-process, common arguments."""

from __future__ import annotations

import io
import json
import signal
from contextlib import redirect_stdout
from typing import Any

from stages.train.__main__ import main

# Small enough for seconds per run on two cores: 32 px images, batch 2, 4 epochs.
TRAIN_ARGS = [
    "--epochs", "4",
    "--batch-size", "2",
    "--image-size", "32",
    "--max-length", "1024",
    "--log-every", "1",
    "--keep-last", "2",
    "--save-every-steps", "2",
    "--device", "cpu",
]  # fmt: skip
BROKEN_RECORDS = [
    {"id": "no_image", "image": "missing.png", "conversations": [
        {"from": "human", "value": "<image>\nx"}, {"from": "gpt", "value": "y"}]},
    {"id": "one_turn", "image": "000000.png", "conversations": [
        {"from": "human", "value": "<image>\nx"}]},
]  # fmt: skip


def run_cli(argv: list[str]) -> tuple[int, list[dict[str, Any]]]:
    """Run the stage in-process; returns its exit code and its protocol events. The stage
    installs its own SIGTERM handler; pytest's is put back afterwards."""
    out = io.StringIO()
    previous = signal.getsignal(signal.SIGTERM)
    try:
        with redirect_stdout(out):
            code = main([*argv, "--progress", "json"])
    finally:
        signal.signal(signal.SIGTERM, previous)
    return code, [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def events_of(events: list[dict[str, Any]], name: str, **match: Any) -> list[dict[str, Any]]:
    """The events named ``name`` whose fields equal ``match``."""
    return [
        e for e in events if e["event"] == name and all(e.get(k) == v for k, v in match.items())
    ]
