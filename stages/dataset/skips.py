"""``skipped.json``: the models a stage left out of the dataset, each with its reason code.

Render and convert each replace their own entry when they finish (``rendering`` and
``conversion``: model id -> reason, such as ``timeout`` or ``too_long``). Validation reads it
to tell a model a stage left out and said why (counted, not an error) from one that went
missing without a word (an error). One stage works on a dataset at a time (the server claims
it for one job), so the atomic write is all the file needs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from stages.atomic import write_json_atomic
from stages.dataset.layout import SKIPS_FILE

Skips = dict[str, dict[str, str]]  # stage -> model id -> reason


def read_skips(dataset: Path) -> tuple[Skips, str | None]:
    """Every stage's left-out models, and a warning when the file exists but cannot be used.
    No file is no skips and no warning."""
    path = Path(dataset) / SKIPS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return {}, f"cannot read {SKIPS_FILE} ({exc}): no model counts as left out on purpose"
    if not isinstance(data, dict):
        return {}, f"{SKIPS_FILE} is not an object: no model counts as left out on purpose"
    skips: Skips = {}
    for stage, models in data.items():
        if isinstance(models, dict):
            skips[str(stage)] = {str(k): str(v) for k, v in models.items() if isinstance(v, str)}
    return skips, None


def write_skips(dataset: Path, stage: str, skipped: Mapping[str, str]) -> None:
    """Replace ``stage``'s entry with ``skipped`` (model id -> reason); other stages' are kept.
    A file that cannot be read is replaced."""
    skips, _ = read_skips(dataset)
    skips[stage] = dict(sorted(skipped.items()))
    write_json_atomic(Path(dataset) / SKIPS_FILE, skips, indent=1)
