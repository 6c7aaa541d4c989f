"""A trained adapter merged into its base model, written as a standalone checkpoint in the
base model's own layout, with an uncompressed tar of it for download.

``python -m stages.train.export --checkpoint BASE --adapter DIR --output DIR
[--dtype auto|fp32|fp16|bf16]``

``--output`` is a new folder; the stage writes ``model/`` (the merged checkpoint) and
``model.tar`` (``model/`` and every file in it; safetensors do not compress, so it is not
compressed). The checkpoint is what the base's own family loads:

- a transformers LLaVA base (``tiny`` is built into each run as one): the merged model by
  ``save_pretrained`` with its tokenizer and image processor, loadable by
  ``stages.train.models.load_base_model`` and transformers alike;
- a TinyLLaVA base: the layout and parameter names TinyLLaVA ships (``tinyllava.merge``).

``--dtype auto`` keeps the dtype the base checkpoint is stored in. Emits ``start``,
``progress`` (in megabytes of base weights), ``result`` (every file with its size, the base
model's kind, the archive's size and sha256) and ``done``; bad input is exit code 2.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

from stages.protocol import CancelFlag, OneLineParser, Reporter, UsageError, run_stage, writing

MODEL_DIR = "model"
ARCHIVE = "model.tar"
ADAPTER_CONFIG = "adapter_config.json"
DTYPE_CHOICES = ("auto", "fp32", "fp16", "bf16")
STORED_DTYPES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}
WEIGHT_SUFFIXES = (".safetensors", ".bin")
CHUNK = 1024 * 1024


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="python -m stages.train.export",
        description="merge a LoRA adapter into its base model and write the checkpoint and a tar",
    )
    p.add_argument("--checkpoint", required=True, help="base model: a directory or cached hub id")
    p.add_argument("--adapter", type=Path, required=True, help="the trained adapter to merge")
    p.add_argument("--output", type=Path, required=True, help="new folder: model/ and model.tar")
    p.add_argument(
        "--dtype", choices=DTYPE_CHOICES, default="auto", help="auto: the base's stored dtype"
    )
    return p


def weights_megabytes(directory: Path) -> int:
    """The size of a checkpoint folder's weight files in whole megabytes (at least 1): the
    unit of this stage's progress, and of the server's time estimate for it."""
    try:
        size = sum(
            p.stat().st_size for p in Path(directory).iterdir() if p.suffix in WEIGHT_SUFFIXES
        )
    except OSError:
        size = 0
    return max(1, math.ceil(size / CHUNK))


def stored_dtype(directory: Path) -> str:
    """The precision a checkpoint's ``config.json`` says it is stored in (fp32 if unsaid)."""
    try:
        config = json.loads((Path(directory) / "config.json").read_text())
    except (OSError, ValueError):
        return "fp32"
    if not isinstance(config, dict):
        return "fp32"
    return STORED_DTYPES.get(str(config.get("torch_dtype") or config.get("dtype")), "fp32")


def _check_arguments(args: argparse.Namespace) -> None:
    if not (args.adapter / ADAPTER_CONFIG).is_file():
        raise UsageError(f"--adapter {args.adapter} holds no {ADAPTER_CONFIG}")
    if args.output.exists() and (not args.output.is_dir() or any(args.output.iterdir())):
        raise UsageError(f"--output {args.output} already exists; choose a new folder")


def save_llava_checkpoint(model: Any, bundle: Any, directory: Path) -> Path:
    """A merged transformers model with its tokenizer and image processor, atomically."""
    tmp = directory.with_name(f".{directory.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    bundle.tokenizer.save_pretrained(tmp)
    bundle.image_processor.save_pretrained(tmp)
    tmp.replace(directory)
    return directory


def write_archive(model_dir: Path, archive: Path) -> dict[str, Any]:
    """``archive``: an uncompressed tar of ``model_dir`` (entries under ``model/``, owner
    and group left out), written atomically; its size and sha256."""
    tmp = archive.with_name(f".{archive.name}.tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(model_dir, arcname=MODEL_DIR, recursive=False, filter=_anonymous)
        for path in sorted(model_dir.rglob("*")):
            arcname = f"{MODEL_DIR}/{path.relative_to(model_dir).as_posix()}"
            tar.add(path, arcname=arcname, recursive=False, filter=_anonymous)
    digest = hashlib.sha256()
    with tmp.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    tmp.replace(archive)
    size = archive.stat().st_size
    return {"name": archive.name, "size_bytes": size, "sha256": digest.hexdigest()}


def _anonymous(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def file_list(directory: Path) -> list[dict[str, Any]]:
    return [
        {"name": p.relative_to(directory).as_posix(), "size_bytes": p.stat().st_size}
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    ]


def _body(args: argparse.Namespace, reporter: Reporter, cancel: CancelFlag) -> dict[str, Any]:
    _check_arguments(args)  # before the heavy imports: a typo is answered at once
    import torch

    from stages.train.devices import DTYPES
    from stages.train.lora import load_adapter
    from stages.train.models import load_base_model, resolve_base_model
    from stages.train.tinyllava.config import MODEL_TYPE as TINYLLAVA
    from stages.train.tinyllava.merge import save_tinyllava_checkpoint

    ref = resolve_base_model(args.checkpoint)
    if ref.path is None:
        raise UsageError("--checkpoint must be a checkpoint directory or a cached hub id")
    precision = stored_dtype(ref.path) if args.dtype == "auto" else args.dtype
    dtype = DTYPES[precision]
    total = weights_megabytes(ref.path)
    reporter.start(total, unit="MB")

    reporter.progress(force=True, phase="merging")
    bundle = load_base_model(ref, torch.float32)  # merged in fp32, saved in ``dtype``
    merged = load_adapter(bundle, args.adapter).merge_and_unload().eval()
    reporter.advance(n=total // 2)
    reporter.progress(force=True, phase="saving")

    output = args.output.resolve()
    model_dir, archive = output / MODEL_DIR, output / ARCHIVE
    with writing(output):
        output.mkdir(parents=True, exist_ok=True)
        if ref.model_type == TINYLLAVA:
            save_tinyllava_checkpoint(merged, bundle, model_dir, dtype)
        else:
            save_llava_checkpoint(merged.to(dtype), bundle, model_dir)
        reporter.advance(n=total // 4)
        reporter.progress(force=True, phase="archiving")
        archived = write_archive(model_dir, archive)
    reporter.advance(n=total - reporter.current)
    files = file_list(model_dir)
    return {
        "base_model": ref.describe(),
        "base_model_kind": ref.model_type,
        "adapter": str(args.adapter.resolve()),
        "dtype": precision,
        "model_dir": str(model_dir),
        "files": files,
        "size_bytes": sum(f["size_bytes"] for f in files),
        "archive": {**archived, "path": str(archive)},
    }


def main(argv: list[str] | None = None) -> int:
    # Here, not at import: the server imports this module for its names and sizes.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever downloaded
    return run_stage("export", build_parser(), _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
