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

PY = sys.executable
TEST_RUN = ["--train-samples", "100", "--val-samples", "20", "--epochs", "5", "--batch-size", "4"]

# name -> (shape fields changed from TINY_SHAPE, stage flags changed from the defaults)
CANDIDATES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "current": ({}, {}),
}


def ensure_dataset(cache: Path) -> Path:
    """The demo's dataset, built once by the stages themselves (``dataset.json``'s conversion
    entry marks it complete)."""
    manifest = cache / "dataset.json"
    if manifest.is_file() and json.loads(manifest.read_text()).get("conversion", {}).get(
        "status"
    ) == "completed":
        return cache
    shutil.rmtree(cache, ignore_errors=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    print(f"writing the demo dataset to {cache} (once; not timed)", flush=True)
    steps = [
        ["stages.extract", "--source", "synthetic", "--train-size", "48", "--val-size", "8",
         "--output", str(cache)],
        ["stages.render", "--input", str(cache), "--views", "front,top,right",
         "--resolution", "512"],
        ["stages.convert", "--dataset", str(cache), "--randomize-templates"],
    ]  # fmt: skip
    for step in steps:
        subprocess.run([PY, "-m", *step, "--progress", "none"], cwd=REPO, check=True)
    return cache


def build_base_model(run: Path, dataset: Path, shape_changes: dict[str, Any], image_size: int):
    """The run's ``base_model/`` as the stage would build it, from the candidate's shape."""
    from stages.train.data import read_split, record_texts
    from stages.train.finetune import TOKENIZER_CORPUS_RECORDS
    from stages.train.tiny import TINY_SHAPE, build_tiny_checkpoint

    shape = dataclasses.replace(TINY_SHAPE, **shape_changes)
    texts = record_texts(read_split(dataset, "train"), TOKENIZER_CORPUS_RECORDS)
    run.mkdir(parents=True)
    build_tiny_checkpoint(run / "base_model", texts, image_size=image_size, shape=shape)


def flags_of(changes: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key, value in changes.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else "--no-" + key.replace("_", "-"))
        else:
            out += [flag, str(value)]
    return out


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
    build_base_model(run, dataset, shape, image_size)
    command = [
        PY, "-m", "stages.train", "--dataset", str(dataset), "--output", str(run),
        "--mode", "test-run", "--device", "cpu", *TEST_RUN, *flags_of(flags),
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
        (shape if key in fields else flags)[key] = parse_value(value)
    return name, shape, flags


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES))
    parser.add_argument("--set", action="append", default=[], help="an ad hoc candidate")
    parser.add_argument("--evaluate", type=int, default=0, help="also score N val records")
    parser.add_argument("--cache", type=Path, default=REPO / "var" / "bench" / "tiny-recipe-demo")
    parser.add_argument("--keep", type=Path, help="keep the runs in this folder")
    args = parser.parse_args()
    chosen = [(n, *CANDIDATES[n]) for n in args.candidates if args.set == [] or n in CANDIDATES]
    if args.set:
        chosen = [parse_set(s) for s in args.set]
    dataset = ensure_dataset(args.cache.resolve())
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep.resolve() if args.keep else Path(tmp)
        for name, shape, flags in chosen:
            shutil.rmtree(root / name, ignore_errors=True)
            row = run_candidate(name, shape, flags, dataset, root)
            if args.evaluate and "failed" not in row:
                row.update(evaluate(Path(row["run"]), dataset, args.evaluate))
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
