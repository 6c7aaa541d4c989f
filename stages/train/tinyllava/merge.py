"""A trained adapter merged into its TinyLLaVA base model, saved as a TinyLLaVA checkpoint.

``python -m stages.train.tinyllava.merge --adapter DIR --output DIR [--dtype fp16]``

The result has the base's layout and parameter names (``config.json``, ``model.safetensors``,
tokenizer and image processor files), loads with the same loader as any TinyLLaVA checkpoint
and records the system text it was trained with, so inference prompts it the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from torch import nn

from stages.protocol import CancelFlag, Reporter, UsageError, run_stage
from stages.train.devices import DTYPES
from stages.train.tinyllava.chat import SYSTEM_PROMPT_KEY
from stages.train.tinyllava.config import CONFIG_FILE, MODEL_TYPE
from stages.train.tinyllava.weights import save_tensors

ADAPTER_CONFIG = "adapter_config.json"
GENERATION_CONFIG = "generation_config.json"
# The tokenizer files a TinyLLaVA checkpoint ships (a SentencePiece Llama-2 tokenizer): copied
# from the base byte for byte, since training never changes the tokenizer and transformers'
# own save writes another format (tokenizer.json) that TinyLLaVA's slow tokenizer cannot read.
TOKENIZER_FILES = (
    "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "tokenizer.json",
)  # fmt: skip


def adapter_base_model(adapter_dir: Path) -> str:
    """The base model an adapter was trained on, as peft recorded it."""
    path = Path(adapter_dir) / ADAPTER_CONFIG
    try:
        base = json.loads(path.read_text())["base_model_name_or_path"]
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"{adapter_dir} is not an adapter directory ({exc})") from exc
    if not base:
        raise UsageError(f"{path} does not name its base model")
    return str(base)


def save_tinyllava_checkpoint(
    model: nn.Module, bundle: Any, directory: Path, dtype: torch.dtype = torch.float16
) -> Path:
    """Write ``model`` (a TinyLLaVA model, e.g. merged) with ``bundle``'s config, tokenizer and
    processor into ``directory``, atomically."""
    config = bundle.extra["tinyllava_config"]
    tmp = directory.with_name(f".{directory.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    raw = {**config.raw, SYSTEM_PROMPT_KEY: bundle.prompt.system}
    raw["torch_dtype"] = str(dtype).removeprefix("torch.")
    (tmp / CONFIG_FILE).write_text(json.dumps(raw, indent=2) + "\n")
    save_tensors(model, tmp, dtype)
    shipped = [config.directory / name for name in TOKENIZER_FILES]
    shipped = [path for path in shipped if path.is_file()]
    for path in shipped:
        shutil.copyfile(path, tmp / path.name)
    if not shipped:
        bundle.tokenizer.save_pretrained(tmp)
    bundle.image_processor.save_pretrained(tmp)
    if (config.directory / GENERATION_CONFIG).is_file():
        shutil.copyfile(config.directory / GENERATION_CONFIG, tmp / GENERATION_CONFIG)
    tmp.replace(directory)
    return directory


def merge_adapter(adapter_dir: Path, output_dir: Path, dtype: torch.dtype = torch.float16) -> Path:
    """Load the adapter's base model, merge the adapter into it and save the result."""
    from stages.train.lora import load_adapter
    from stages.train.models import load_base_model, resolve_base_model

    if output_dir.exists():
        raise UsageError(f"{output_dir} already exists; choose a new output directory")
    ref = resolve_base_model(adapter_base_model(adapter_dir))
    if ref.model_type != MODEL_TYPE:
        raise UsageError(f"the adapter's base model is {ref.model_type!r}, not a TinyLLaVA one")
    bundle = load_base_model(ref, torch.float32)
    merged = load_adapter(bundle, adapter_dir).merge_and_unload()
    return save_tinyllava_checkpoint(merged, bundle, output_dir, dtype)


def build_parser() -> argparse.ArgumentParser:
    from stages.protocol import OneLineParser

    parser = OneLineParser(
        prog="python -m stages.train.tinyllava.merge",
        description="merge a LoRA adapter into its TinyLLaVA base and save the checkpoint",
    )
    parser.add_argument("--adapter", type=Path, required=True, help="the trained adapter")
    parser.add_argument("--output", type=Path, required=True, help="new checkpoint directory")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp16")
    return parser


def _body(args: argparse.Namespace, reporter: Reporter, cancel: CancelFlag) -> dict[str, Any]:
    output = merge_adapter(args.adapter, args.output.resolve(), DTYPES[args.dtype])
    return {"checkpoint": str(output), "adapter": str(args.adapter.resolve())}


def main(argv: list[str] | None = None) -> int:
    return run_stage("merge", build_parser(), _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
