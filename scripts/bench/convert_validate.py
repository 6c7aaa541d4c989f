"""Convert and validate benchmark: 11,000 models (10,000 train + 1,000 val), 33,000 images.

The models come from the synthetic generator (written once into a cache under ``var/bench``;
not timed; a larger cached synthetic root is reused, since a smaller count is a prefix of it).
The images are NOT renders: they are valid PNG line drawings of the right size, drawn with
Pillow from a few dozen variants, because rendering 33,000 views takes far longer than what is
measured here. Every one is still fully decoded by the validation.

The stages run as the server runs them (``python -m stages.<name> --progress json``) while
this script samples their memory. Prints wall time, records/s, the stages' own counts and peak
RSS (the stage process, its largest worker, and the whole tree summed). Targets: convert
under 20 s, validate under 3 minutes, on 2 cores.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import time
from pathlib import Path

from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from scripts.bench._measure import MB, MemorySampler, StageRun, run_sampled_stage  # noqa: E402
from stages.dataset.layout import (  # noqa: E402
    MANIFEST,
    SPLIT_FILE,
    find_model_files,
    image_file_name,
    images_dir,
    model_file,
)

CONVERT_TARGET_S = 20.0
VALIDATE_TARGET_S = 180.0
VIEWS = ("front", "top", "right")
IMAGE_VARIANTS = 48


def synthetic_root(cache_dir: Path, count: int, workers: int) -> Path:
    """A synthetic DeepCAD root of at least ``count`` models (the split file marks it done)."""
    for existing in sorted(cache_dir.glob("synthetic-*-seed0")):
        size = int(existing.name.split("-")[1])
        if size >= count and (existing / "train_val_test_split.json").is_file():
            return existing
    from stages.cad.synth import write_dataset

    root = cache_dir / f"synthetic-{count}-seed0"
    print(f"writing {count} synthetic models to {root} (once; not timed)", flush=True)
    started = time.monotonic()
    write_dataset(root, count, 0, workers=workers)
    print(f"  done in {time.monotonic() - started:.0f} s", flush=True)
    return root


def png_variants(resolution: int) -> list[bytes]:
    """Line drawings of the render's size and PNG settings (compress level 1)."""
    rng = random.Random(0)
    variants = []
    for _ in range(IMAGE_VARIANTS):
        image = Image.new("RGB", (resolution, resolution), (255, 255, 255))
        draw = ImageDraw.Draw(image)
        for _ in range(rng.randint(10, 60)):
            points = [rng.randint(resolution // 8, resolution * 7 // 8) for _ in range(4)]
            draw.line(points, fill=(20, 20, 20), width=max(1, resolution // 256))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1)
        variants.append(buffer.getvalue())
    return variants


def prepare_dataset(root: Path, folder: Path, models: int, val: int, resolution: int) -> Path:
    """``cad_json`` (hard links into the root), ``split.json``, ``images``, a manifest."""
    marker = folder / ".complete"
    if marker.is_file():
        return folder
    print(f"preparing {folder} (once; not timed)", flush=True)
    ids = sorted(find_model_files(root))[:models]
    variants = png_variants(resolution)
    for number, model_id in enumerate(ids):
        target = model_file(folder, model_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            os.link(model_file(root, model_id), target)
        for index, view in enumerate(VIEWS):
            image = images_dir(folder) / image_file_name(model_id, view)
            image.parent.mkdir(parents=True, exist_ok=True)
            image.write_bytes(variants[(number * 3 + index) % len(variants)])
    split = {"train": ids[: models - val], "validation": ids[models - val :]}
    (folder / SPLIT_FILE).write_text(json.dumps(split))
    manifest = {"name": folder.name, "render": {"views": list(VIEWS), "resolution": resolution}}
    (folder / MANIFEST).write_text(json.dumps(manifest))
    marker.touch()
    return folder


def run_stage(module: str, args: list[str]) -> StageRun:
    command = [sys.executable, "-m", module, *args, "--progress", "json"]
    return run_sampled_stage(command, module, interval=0.05)


def print_timing(name: str, run: StageRun, target: float, records: int) -> None:
    print(f"{name:<16} {run.seconds:7.1f} s   (target < {target:.0f} s)")
    print(f"  CPU time         {run.cpu_seconds:7.1f} s   (stage + workers; "
          f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")  # fmt: skip
    print(f"  records/s        {records / run.seconds:7.0f}   ({records} records)")


def print_memory(memory: MemorySampler) -> None:
    print(f"  peak RSS stage   {memory.peak_main / MB:7.0f} MB")
    print(f"  peak RSS worker  {memory.peak_worker / MB:7.0f} MB")
    print(f"  peak RSS tree    {memory.peak_tree_rss / MB:7.0f} MB  (shared pages summed)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=11_000)
    parser.add_argument("--val", type=int, default=1_000)
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--cache", type=Path, default=REPO / "var" / "bench")
    args = parser.parse_args()
    root = synthetic_root(args.cache, args.models, args.workers)
    name = f"convert-validate-{args.models}-{args.resolution}"
    dataset = prepare_dataset(root, args.cache / name, args.models, args.val, args.resolution)
    common = ["--dataset", str(dataset), "--workers", str(args.workers)]

    print(f"{args.models} models, {3 * args.models} images of {args.resolution} px "
          f"(synthetic PNG drawings, not renders), {args.workers} workers")  # fmt: skip
    convert = run_stage("stages.convert", common)
    converted = convert.result
    records = converted["train_conversations"] + converted["val_conversations"]
    print_timing("convert", convert, CONVERT_TARGET_S, records)
    dropped, failed = converted["dropped_too_long"], converted["failed_models"]
    print(f"  dropped too long {dropped:7d}   failed models: {failed}")
    print(f"  avg answer       {converted['avg_answer_chars']:7.0f} chars")
    print_memory(convert.memory)

    validate = run_stage("stages.validate", common)
    validated = validate.result
    stats, checks = validated["stats"], validated["validation"]
    print_timing(
        "validate", validate, VALIDATE_TARGET_S, stats["train_samples"] + stats["val_samples"]
    )
    print(f"  images decoded   {checks['images_checked']:7d}   answers interpreted "
          f"{stats['answers_interpreted']}, valid: {validated['valid']}")  # fmt: skip
    print(f"  problems         {validated['problem_counts']}")
    print_memory(validate.memory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
