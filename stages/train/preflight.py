"""Check a training request before a job starts, so a bad one is a 422, not a failure an hour in.

``python -m stages.train.preflight --dataset DIR [--mode M] [any run option of the stage]``
takes exactly the options ``python -m stages.train`` takes (``--output`` aside), resolves them
with the mode's defaults as the run will, and prints one JSON object: ``{"ok": true,
"devices": [...], "device": ..., "precision": ..., "base_model": {...}, "dataset": {...},
"config": {the resolved run}}``, or exits 2 with ``{"ok": false, "field": ..., "detail": "what
is wrong and what to do"}``. ``--devices`` prints the available devices, precisions per device
and library versions. Only files are read: no weights are loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from stages.protocol import JsonErrorParser
from stages.train.__main__ import add_run_options, run_options
from stages.train.config import MODE_DEFAULTS, ConfigError, TrainConfig, build_config
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


def max_gpus(device: str) -> int | None:
    """The most processes a run on ``device`` may start here: one per CUDA GPU, one on MPS;
    None on a CPU (gloo ranks: as many as the service's gpu slots allow)."""
    if device == "cuda":
        import torch

        return torch.cuda.device_count()
    return 1 if device == "mps" else None


def check_gpus(gpus: int, device: str) -> None:
    most = max_gpus(device)
    if most is not None and gpus > most:
        raise ConfigError(
            "gpus", f"{gpus} processes asked for, but this host has {most} {device} device(s)"
        )


def check_request(
    dataset: Path | None, mode: str | None, options: dict[str, Any]
) -> dict[str, Any]:
    """The resolved request; a ConfigError names the first bad field. Without a dataset only
    the options, the device and the base model are checked."""
    config = build_config(dataset or Path("."), Path("."), mode, **options)
    runtime = resolve_runtime(config.device, config.precision)
    check_gpus(config.gpus, runtime.device.type)
    report: dict[str, Any] = {
        "ok": True,
        "devices": available_devices(),
        "device": runtime.device.type,
        "precision": runtime.precision,
        "base_model": resolve_base_model(config.base_model).describe(),
    }
    resolved = config.to_json()
    resolved.pop("output"), resolved.pop("dataset")
    if dataset is not None:
        report["dataset"] = check_dataset(dataset)
        explicit = {k for k, v in options.items() if v is not None}
        resolved.update(check_samples_resolved(config, report["dataset"], explicit))
    report["config"] = resolved
    return report


def check_samples_resolved(
    config: TrainConfig, dataset: dict[str, Any], explicit: set[str]
) -> dict[str, int]:
    """How many records the run will use: what was asked (more than there are is an error
    when asked for, and capped when it is only the mode's default)."""
    used: dict[str, int] = {}
    for field, available in (
        ("train_samples", dataset["train_records"]),
        ("val_samples", dataset["val_records"]),
    ):
        wanted = getattr(config, field)
        if wanted is not None and wanted > available and field in explicit:
            raise ConfigError(field, f"{wanted} is more than the dataset's {available} records")
        used[field] = available if wanted is None else min(wanted, available)
    return used


def build_parser() -> argparse.ArgumentParser:
    p = JsonErrorParser(prog="python -m stages.train.preflight", description=__doc__)
    p.add_argument("--devices", action="store_true", help="list devices, precisions, versions")
    p.add_argument("--dataset", type=Path)
    add_run_options(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.devices:
        print(json.dumps(device_report()))
        return 0
    try:
        report = check_request(args.dataset, args.mode, run_options(args))
    except ConfigError as exc:
        print(json.dumps({"ok": False, "field": exc.field, "detail": exc.detail}))
        return 2
    print(json.dumps(report))
    return 0


def mode_defaults() -> dict[str, dict[str, Any]]:
    """Every mode's resolved defaults, for the service's info page."""
    out = {}
    for mode in MODE_DEFAULTS:
        resolved = build_config(Path("."), Path("."), mode).to_json()
        resolved.pop("dataset"), resolved.pop("output"), resolved.pop("mode")
        out[mode] = resolved
    return out


if __name__ == "__main__":
    sys.exit(main())
