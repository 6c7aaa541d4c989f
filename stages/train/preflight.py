"""Check a training request before a job starts, so a bad one is a 422, not a failure an hour in.

``python -m stages.train.preflight --base-model X --device Y [--precision P] [--dataset DIR]``
prints one JSON object: ``{"ok": true, "devices": [...], "device": ..., "precision": ...,
"base_model": {...}, "dataset": {...}}``, or exits 2 with ``{"ok": false, "field": ...,
"detail": "what is wrong and what to do"}``. ``--devices`` prints the available devices,
precisions per device and library versions. Only files are read: no weights are loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from stages.train.config import DEVICES, PRECISIONS, ConfigError
from stages.train.data import IMAGES_DIR, DatasetError, parse_record, read_split
from stages.train.devices import available_devices, device_report, resolve_runtime
from stages.train.models import resolve_base_model

SAMPLED_RECORDS = 10  # training records looked at; the run itself skips single broken ones


def check_dataset(dataset: Path) -> dict[str, Any]:
    """The dataset is converted: both splits readable, and among the first training records at
    least one well-formed with its image on disk (single broken records are skipped later)."""
    if not dataset.is_dir():
        raise DatasetError(f"no dataset directory {dataset}: extract and convert it first")
    raw_train, raw_val = read_split(dataset, "train"), read_split(dataset, "val")
    if not raw_train:
        raise DatasetError("train.json holds no records: convert the dataset again")
    problems: list[str] = []
    for raw in raw_train[:SAMPLED_RECORDS]:
        try:
            parse_record(raw, dataset / IMAGES_DIR)
            break
        except (ValueError, OSError) as exc:
            problems.append(str(exc))
    else:
        raise DatasetError(
            f"none of the first {len(problems)} training records is usable ({problems[0]}): "
            "render and convert the dataset again"
        )
    return {
        "path": str(dataset.resolve()),
        "train_records": len(raw_train),
        "val_records": len(raw_val),
    }


def check_request(
    base_model: str, device: str, precision: str = "auto", dataset: Path | None = None
) -> dict[str, Any]:
    """The resolved request; a ConfigError names the first bad field."""
    runtime = resolve_runtime(device, precision)
    report: dict[str, Any] = {
        "ok": True,
        "devices": available_devices(),
        "device": runtime.device.type,
        "precision": runtime.precision,
        "base_model": resolve_base_model(base_model).describe(),
    }
    if dataset is not None:
        report["dataset"] = check_dataset(dataset)
    return report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m stages.train.preflight", description=__doc__)
    p.add_argument("--devices", action="store_true", help="list devices, precisions, versions")
    p.add_argument("--base-model", default="tiny")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--precision", default="auto", choices=PRECISIONS)
    p.add_argument("--dataset", type=Path)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.devices:
        print(json.dumps(device_report()))
        return 0
    try:
        report = check_request(args.base_model, args.device, args.precision, args.dataset)
    except ConfigError as exc:
        print(json.dumps({"ok": False, "field": exc.field, "detail": exc.detail}))
        return 2
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
