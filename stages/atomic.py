"""Atomic file writes: readers see the old file or the new one, never half of one.

Every file a stage writes into a dataset (manifests, records, models, rendered PNGs) goes
through here, so a cancel or a crash at any moment leaves only whole files behind.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any


def write_bytes_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` so that readers see the old file or the new one, never half of one.

    The temporary name is chosen before the file exists, so whatever interrupts the write
    (a cancel's SIGTERM included) can always remove it. ``durable`` also flushes the file
    to disk before the rename (against power loss, not only a killed process).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(temporary, "xb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str, *, durable: bool = True) -> None:
    write_bytes_atomic(path, text.encode("utf-8"), durable=durable)


def write_json_atomic(path: Path, data: Any, *, indent: int | None = 2) -> None:
    """Write JSON so that readers see the old file or the new one, never half of one."""
    write_text_atomic(path, json.dumps(data, indent=indent, ensure_ascii=False) + "\n")
