"""Native TinyLLaVA benchmark: checkpoint load, LoRA training steps, cached greedy generation.

    python scripts/bench/tinyllava.py [--shape small|openecad-0.89b] [--device cpu|cuda]
        [--batch-size 4] [--steps 4] [--seq-len 600] [--new-tokens 32] [--lora-r 16]

Writes a random-weight TinyLLaVA checkpoint of the chosen shape (``openecad-0.89b``:
OpenELM-450M, SigLIP so400m at 384 px, mlp2x_gelu, the real model's shapes; ``small``: a
CPU-sized model of the same families) in fp16, then prints one JSON line per measurement:
load time, training samples/s and tokens/s (LoRA on decoder and vision tower, connector fully
trained, AdamW; bf16 autocast on CUDA), prefill time and decoding tokens/s with the cache.
The real shape needs a GPU (a CPU step takes minutes).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from stages.train.tinyllava.config import read_config  # noqa: E402
from stages.train.tinyllava.decoders import OPENELM  # noqa: E402
from stages.train.tinyllava.generate import greedy_generate  # noqa: E402
from stages.train.tinyllava.loader import load_tinyllava_model, vision_lora_pattern  # noqa: E402
from stages.train.tinyllava.model import TinyLlavaModel  # noqa: E402
from stages.train.tinyllava.weights import save_tensors  # noqa: E402

SHAPES = {
    "small": {
        "text": {"model_dim": 256, "num_transformer_layers": 4, "head_dim": 32,
                 "num_gqa_groups": 4, "ffn_dim_divisor": 64},
        "vision": {"hidden_size": 192, "intermediate_size": 768, "num_hidden_layers": 4,
                   "num_attention_heads": 3, "image_size": 224, "patch_size": 14},
    },
    "openecad-0.89b": {
        "text": {"model_dim": 1536, "num_transformer_layers": 20, "head_dim": 64,
                 "num_gqa_groups": 4, "ffn_dim_divisor": 256},
        "vision": {"hidden_size": 1152, "intermediate_size": 4304, "num_hidden_layers": 27,
                   "num_attention_heads": 16, "image_size": 384, "patch_size": 14},
    },
}  # fmt: skip


def write_random_checkpoint(directory: Path, shape: str) -> Path:
    text = {
        "model_type": "openelm", "vocab_size": 32000, "qkv_multipliers": [0.5, 1.0],
        "ffn_multipliers": [0.5, 4.0], "normalize_qk_projections": True,
        "share_input_output_layers": True, "max_context_length": 2048, **SHAPES[shape]["text"],
    }  # fmt: skip
    vision = {"model_type": "siglip_vision_model", **SHAPES[shape]["vision"]}
    config = {
        "model_type": "tinyllava", "connector_type": "mlp2x_gelu", "text_config": text,
        "vision_config": vision, "vision_feature_layer": -2,
        "vision_feature_select_strategy": "patch", "image_token_index": -200,
        "tokenizer_model_max_length": 2048,
    }  # fmt: skip
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps(config))
    torch.manual_seed(0)
    save_tensors(TinyLlavaModel(read_config(directory)), directory, torch.float16)
    return directory


def report(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def batch(model: TinyLlavaModel, size: int, seq_len: int, image_size: int, device) -> dict:
    images = model.num_image_tokens
    text = torch.randint(3, 32000, (size, seq_len - images))
    ids = torch.cat([text[:, :8], torch.full((size, images), -200), text[:, 8:]], dim=1)
    labels = ids.clone()
    labels[:, : 8 + images + 40] = -100  # prompt and image are not learned
    return {
        "input_ids": ids.to(device),
        "labels": labels.to(device),
        "pixel_values": torch.randn(size, 3, image_size, image_size, device=device),
    }


def bench_training(model, args, device, dtype, image_size: int) -> None:
    vision_pattern = vision_lora_pattern(model.vision_tower.layers_used)
    lora = LoraConfig(
        r=args.lora_r, lora_alpha=2 * args.lora_r, lora_dropout=0.0,
        target_modules=f"(?:{OPENELM.lora_pattern})|(?:{vision_pattern})",
        modules_to_save=["_connector"],
    )  # fmt: skip
    peft_model = get_peft_model(model, lora)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    for param in params:
        param.data = param.data.float()
    optimizer = torch.optim.AdamW(params, lr=1e-4, fused=device.type == "cuda")
    inputs = batch(model, args.batch_size, args.seq_len, image_size, device)
    autocast = torch.autocast(device.type, dtype=dtype, enabled=device.type == "cuda")
    peft_model.train()
    times = []
    for step in range(args.steps + 1):  # the first step warms up
        synchronize(device)
        start = time.perf_counter()
        with autocast:
            loss = peft_model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        synchronize(device)
        if step:
            times.append(time.perf_counter() - start)
    seconds = sum(times) / len(times)
    report(
        measure="train_step", batch_size=args.batch_size, seq_len=args.seq_len,
        lora_r=args.lora_r, step_s=round(seconds, 3),
        samples_per_s=round(args.batch_size / seconds, 2),
        tokens_per_s=round(args.batch_size * args.seq_len / seconds),
        peak_gb=round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        if device.type == "cuda" else None,
    )  # fmt: skip
    peft_model.unload()


def bench_generation(model, args, device, dtype, image_size: int) -> None:
    model.eval()
    inputs = batch(model, 1, args.seq_len, image_size, device)
    autocast = torch.autocast(device.type, dtype=dtype, enabled=device.type == "cuda")
    with autocast:
        synchronize(device)
        start = time.perf_counter()
        greedy_generate(model, inputs["input_ids"], inputs["pixel_values"], set(), 1)
        synchronize(device)
        prefill = time.perf_counter() - start
        start = time.perf_counter()
        greedy_generate(model, inputs["input_ids"], inputs["pixel_values"], set(), args.new_tokens)
        synchronize(device)
        total = time.perf_counter() - start
    decode = max(total - prefill, 1e-9)
    report(
        measure="generate", prompt_tokens=args.seq_len, new_tokens=args.new_tokens,
        prefill_s=round(prefill, 3), decode_tokens_per_s=round((args.new_tokens - 1) / decode, 1),
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="small")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=600)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--lora-r", type=int, default=16)
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    image_size = SHAPES[args.shape]["vision"]["image_size"]

    with tempfile.TemporaryDirectory() as tmp:
        directory = write_random_checkpoint(Path(tmp) / args.shape, args.shape)
        start = time.perf_counter()
        model, _ = load_tinyllava_model(directory, dtype)
        load_s = time.perf_counter() - start
    parameters = sum(p.numel() for p in model.parameters())
    report(measure="load", shape=args.shape, parameters=parameters, load_s=round(load_s, 2),
           device=str(device), dtype=str(dtype).removeprefix("torch."))  # fmt: skip
    model.to(device)
    bench_generation(model, args, device, dtype, image_size)
    bench_training(model, args, device, dtype, image_size)


if __name__ == "__main__":
    main()
