"""Tiny-model recipe benchmark: the demo's test-run under candidate shapes and training knobs.

    python scripts/bench/tiny_recipe.py [--candidates NAME ...] [--set NAME:key=value,...]
        [--evaluate 0] [--cache var/bench/tiny-recipe-demo]

The work is the same every time: ``make demo``'s dataset (the synthetic source, 48 train +
8 val models, seed 0; views front, top and right at 512 px; converted per view with the
demo's randomised prompts: 144 train and 24 val records), written once into a cache folder
(not timed), then, for each candidate, the test-run the demo asks for (100 train and 20
validation samples, 5 epochs, batch 4, on CPU), run as the stage process itself.

A candidate is a tiny-model shape (``stages.train.tiny.VlmShape`` fields changed from
``TINY_SHAPE``) and stage flags (changed from the test-run defaults). The shape is applied by
building the run's ``base_model/`` before the stage starts (exactly what the stage builds
itself from ``TINY_SHAPE``: the same tokenizer corpus, image size and seed), so the stage
reuses it. ``current`` is the stage's own defaults, unchanged.

Prints one JSON line per candidate: the epoch losses (train and validation, nats per answer
token), the verdict (improvement, convergence), nats per answer character (comparable across
tokenizer vocabularies), wall time, training samples/s, peak RSS and the machine's load.
With ``--evaluate N`` a candidate's adapter is also scored on N validation records
(``stages.train.evaluate``: greedy generation, then parse, build, IoU, Chamfer).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from scripts.bench._measure import MemorySampler, children_cpu_seconds  # noqa: E402
from scripts.demo_recipe import DEMO_TEST_RUN, stage_flags, write_demo_dataset  # noqa: E402

PY = sys.executable
TEST_RUN = stage_flags(DEMO_TEST_RUN)

# name -> (shape fields changed from TINY_SHAPE, stage flags changed from the defaults)
CANDIDATES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "current": ({}, {}),
    # the 64-wide shape and recipe the tiny model had before this benchmark chose today's
    "width64": (
        {"text_hidden": 64, "text_intermediate": 128, "head_dim": 16, "init_std": 0.125,
         "head_init_std": None},
        {"lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "learning_rate": 0.01},
    ),
}  # fmt: skip


def build_base_model(
    run: Path, dataset: Path, shape_changes: dict[str, Any], image_size: int, seed: int
) -> None:
    """The run's ``base_model/`` as the stage would build it, from the candidate's shape."""
    from stages.train.data import read_split, record_texts
    from stages.train.finetune import TOKENIZER_CORPUS_RECORDS
    from stages.train.tiny import TINY_SHAPE, build_tiny_checkpoint

    post = {k: v for k, v in shape_changes.items() if k.startswith("x_")}
    shape = dataclasses.replace(
        TINY_SHAPE, **{k: v for k, v in shape_changes.items() if k not in post}
    )
    texts = record_texts(read_split(dataset, "train"), TOKENIZER_CORPUS_RECORDS)
    run.mkdir(parents=True)
    build_tiny_checkpoint(run / "base_model", texts, image_size=image_size, seed=seed, shape=shape)
    if "x_image_mean" in post:  # the processor's mean: 1.0 maps the white background to 0
        config = run / "base_model" / "preprocessor_config.json"
        processor = json.loads(config.read_text())
        processor["image_mean"] = [post.pop("x_image_mean")] * 3
        config.write_text(json.dumps(processor, indent=2))
    if post:
        _rescale(run / "base_model", post)


def _rescale(directory: Path, post: dict[str, Any]) -> None:
    """Experimental inits: x_head_std redraws the output layer, x_resid_scale scales the
    decoder's residual projections (o_proj, down_proj)."""
    import torch
    from safetensors.torch import load_file, save_file

    path = directory / "model.safetensors"
    tensors = load_file(path)
    generator = torch.Generator().manual_seed(1)
    for name, tensor in tensors.items():
        if "x_head_std" in post and name.endswith("lm_head.weight"):
            fresh = torch.randn(tensor.shape, generator=generator) * post["x_head_std"]
            tensors[name] = fresh.to(tensor.dtype)
        if (
            "x_resid_scale" in post
            and "language_model" in name
            and ("o_proj" in name or "down_proj" in name)
        ):
            tensors[name] = tensor * post["x_resid_scale"]
    save_file(tensors, path, metadata={"format": "pt"})


def answer_chars_per_token(run: Path, dataset: Path) -> float:
    """Characters per learned token of the first 100 train answers (+1 end token each)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(run / "base_model", local_files_only=True)
    answers = [r["conversations"][1]["value"] for r in json.loads((dataset / "train.json")
                                                                   .read_text())[:100]]  # fmt: skip
    tokens = sum(len(tokenizer(a, add_special_tokens=False)["input_ids"]) + 1 for a in answers)
    return sum(len(a) for a in answers) / tokens


def run_candidate(
    name: str, shape: dict[str, Any], flags: dict[str, Any], dataset: Path, root: Path
) -> dict[str, Any]:
    from stages.train.tiny import DEFAULT_IMAGE_SIZE

    run = root / name
    image_size = int(flags.get("image_size", DEFAULT_IMAGE_SIZE))
    build_base_model(run, dataset, shape, image_size, int(flags.get("seed", 0)))
    command = [
        PY, "-m", "stages.train", "--dataset", str(dataset), "--output", str(run),
        "--mode", "test-run", "--device", "cpu", *TEST_RUN, *stage_flags(flags),
        "--progress", "json",
    ]  # fmt: skip
    load = os.getloadavg()[0]
    cpu_before = children_cpu_seconds()
    started = time.monotonic()
    proc = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    sampler = MemorySampler(proc.pid, 0.2)
    sampler.start()
    assert proc.stdout is not None
    events = [json.loads(line) for line in proc.stdout if line.startswith("{")]
    proc.wait()
    wall = time.monotonic() - started
    cpu = children_cpu_seconds() - cpu_before
    sampler.stop.set()
    sampler.join()
    result = next((e for e in events if e["event"] == "result"), None)
    if proc.returncode != 0 or result is None:
        return {"bench": "tiny_recipe", "candidate": name, "failed": events[-1:]}
    cpt = answer_chars_per_token(run, dataset)
    epochs = result["loss_progression"]
    return {
        "bench": "tiny_recipe",
        "candidate": name,
        "shape": shape,
        "flags": flags,
        "train_loss": [round(e["train_loss"], 3) for e in epochs],
        "val_loss": [round(e["val_loss"], 3) for e in epochs],
        "total_improvement": result["total_improvement"],
        "convergence": result["convergence"],
        "overfitting": result["overfitting"],
        "final_train_nats_per_char": round(epochs[-1]["train_loss"] / cpt, 3),
        "final_val_nats_per_char": round(epochs[-1]["val_loss"] / cpt, 3),
        "chars_per_token": round(cpt, 2),
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "train_samples_per_s": result["performance"]["throughput"],
        "peak_rss_gib": round(sampler.peak_main / 2**30, 2),
        "load_average_1min": [round(load, 2), round(os.getloadavg()[0], 2)],  # start, end
        "run": str(run),
    }


def evaluate(run: Path, dataset: Path, samples: int) -> dict[str, Any]:
    command = [
        PY, "-m", "stages.train.evaluate", "--checkpoint", str(run / "base_model"),
        "--adapter", str(run / "adapter"), "--dataset", str(dataset), "--samples", str(samples),
        "--device", "cpu", "--progress", "json",
    ]  # fmt: skip
    started = time.monotonic()
    out = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    events = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    result = next((e for e in events if e["event"] == "result"), {})
    return {
        "invalid_ratio": result.get("invalid_ratio"),
        "parse_rate": result.get("parse_rate"),
        "stop_rate": result.get("stop_rate"),
        "iou_mean": (result.get("iou") or {}).get("mean"),
        "chamfer_median": (result.get("chamfer") or {}).get("median"),
        "mean_new_tokens": result.get("mean_new_tokens"),
        "eval_wall_s": round(time.monotonic() - started, 1),
    }


def interleaved_step_seconds(
    runs: dict[str, tuple[Path, dict[str, Any]]], dataset: Path, rounds: int = 3, steps: int = 3
) -> dict[str, float]:
    """The fastest optimizer step (batch 4, the stage's own loss, backward and AdamW) of each
    candidate's model, timed round-robin in one process so that other work on the machine
    slows every candidate alike: the fair comparison of their costs on a busy machine."""

    from stages.train.config import build_config
    from stages.train.data import Collator, VlmDataset, encode_records, iter_records, read_split
    from stages.train.devices import resolve_runtime
    from stages.train.lora import attach_lora
    from stages.train.loss import batch_loss
    from stages.train.models import load_base_model, resolve_base_model
    from stages.train.optim import build_optimization

    runtime = resolve_runtime("cpu", "fp32")
    raw = read_split(dataset, "train")
    prepared = {}
    for name, (run, flags) in runs.items():
        config = build_config(dataset, run, "test-run", device="cpu", **flags)
        bundle = load_base_model(resolve_base_model(str(run / "base_model")), runtime.dtype)

        def encode(human: str, answer: str, bundle: Any = bundle) -> Any:
            return bundle.prompt.encode(
                bundle.tokenizer, human, answer, bundle.image_token_id, bundle.num_image_tokens
            )

        records = iter_records(raw, dataset / "images", lambda *_: None)
        examples = encode_records(records, encode, config.max_length, 4 * steps, lambda *_: None)
        items = VlmDataset(examples, bundle.pixel_values)
        collate = Collator(bundle.tokenizer.pad_token_id)
        batches = [collate([items[i] for i in range(b, b + 4)]) for b in range(0, 4 * steps, 4)]
        model = attach_lora(
            bundle, config.lora_r, config.lora_alpha, config.lora_dropout, config.lora_vision
        )
        model.train()
        prepared[name] = (model, build_optimization(model, config, runtime, 1000), batches)
    best = {name: float("inf") for name in prepared}
    for _ in range(rounds):
        for name, (model, optim, batches) in prepared.items():
            for batch in batches:
                started = time.perf_counter()
                optim.backward(batch_loss(model, batch, runtime))
                optim.step()
                best[name] = min(best[name], time.perf_counter() - started)
    return {name: round(seconds, 3) for name, seconds in best.items()}


def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_set(spec: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``NAME:key=value,...``: keys that are VlmShape fields change the shape, others are
    stage flags."""
    from stages.train.tiny import VlmShape

    fields = {f.name for f in dataclasses.fields(VlmShape)}
    name, _, body = spec.partition(":")
    shape, flags = {}, {}
    for item in filter(None, body.split(",")):
        key, _, value = item.partition("=")
        (shape if key in fields or key.startswith("x_") else flags)[key] = parse_value(value)
    return name, shape, flags


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES))
    parser.add_argument("--set", action="append", default=[], help="an ad hoc candidate")
    parser.add_argument("--evaluate", type=int, default=0, help="also score N val records")
    parser.add_argument("--cache", type=Path, default=REPO / "var" / "bench" / "tiny-recipe-demo")
    parser.add_argument("--keep", type=Path, help="keep the runs in this folder")
    parser.add_argument("--time-runs", type=Path, nargs="+", help="only time these kept runs")
    parser.add_argument(
        "--no-step-times", dest="step_times", action="store_false",
        help="skip the interleaved per-step timing of the candidates' models",
    )  # fmt: skip
    args = parser.parse_args()
    if args.time_runs:  # only the step timing, of runs kept earlier (their saved configs)
        lora = ("lora_r", "lora_alpha", "lora_dropout", "lora_vision")
        runs = {}
        for run in args.time_runs:
            saved = json.loads((run / "train_config.json").read_text())
            runs[run.name] = (run.resolve(), {k: saved[k] for k in lora})
        dataset = write_demo_dataset(args.cache.resolve())
        for name, seconds in interleaved_step_seconds(runs, dataset).items():
            print(json.dumps({"bench": "tiny_recipe.step", "candidate": name,
                              "step_s_min": seconds}), flush=True)  # fmt: skip
        return 0
    chosen = [(n, *CANDIDATES[n]) for n in args.candidates if args.set == [] or n in CANDIDATES]
    if args.set:
        chosen = [parse_set(s) for s in args.set]
    dataset = write_demo_dataset(args.cache.resolve())
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep.resolve() if args.keep else Path(tmp)
        runs = {}
        for name, shape, flags in chosen:
            shutil.rmtree(root / name, ignore_errors=True)
            row = run_candidate(name, shape, flags, dataset, root)
            if args.evaluate and "failed" not in row:
                row.update(evaluate(Path(row["run"]), dataset, args.evaluate))
            print(json.dumps(row), flush=True)
            if "failed" not in row:
                runs[name] = (Path(row["run"]), flags)
        if args.step_times and runs:
            steps = interleaved_step_seconds(runs, dataset)
            reference = steps.get("current") or next(iter(steps.values()))
            for name, seconds in steps.items():
                row = {"bench": "tiny_recipe.step", "candidate": name, "step_s_min": seconds,
                       "relative_cost": round(seconds / reference, 2)}  # fmt: skip
                print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
