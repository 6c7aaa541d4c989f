"""Small synthetic TinyLLaVA datasets for smoke tests and benchmarks.

Each record is a random sketch-and-extrude part (circles, rectangles, triangles) written as
OpenECAD-style code, with a PNG top view of its profiles, so images and answers agree. Real
datasets come from the convert stage; this exists so training can be exercised without one.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from stages.dataset.layout import images_dir

PROMPTS = (
    "This image is a view of a 3D model from a certain angle. Please try to use OpenECAD-style "
    "API to render this model.",
    "This image shows a view of a 3D model from a certain angle. Please use Python-style APIs "
    "to render this model.",
)
ANSWER_PREFIX = "Of course, here are the codes:\n```python\n"
EXTENT = 100.0  # sketch coordinates span [-EXTENT, EXTENT] millimetres


def _num(value: float) -> str:
    text = f"{round(value, 4):.4f}".rstrip("0")
    return "0." if text in ("-0.", "0.") else text


def _pair(u: float, v: float) -> str:
    return f"[{_num(u)}, {_num(v)}]"


def _random_profile(rng: random.Random) -> tuple[str, list[tuple[float, float]], float]:
    """A closed profile: (kind, points or [centre, (radius, 0)], size)."""
    cx, cy = rng.uniform(-50, 50), rng.uniform(-50, 50)
    size = rng.uniform(10, 45)
    kind = rng.choice(("circle", "rectangle", "triangle"))
    if kind == "circle":
        return kind, [(cx, cy), (size, 0.0)], size
    if kind == "rectangle":
        w, h = size, rng.uniform(10, 45)
        return kind, [(cx - w, cy - h), (cx + w, cy - h), (cx + w, cy + h), (cx - w, cy + h)], size
    angles = sorted(rng.uniform(0, 2 * math.pi) for _ in range(3))
    return kind, [(cx + size * math.cos(a), cy + size * math.sin(a)) for a in angles], size


def _code(
    profiles: Sequence[tuple[str, list[tuple[float, float]], float]], rng: random.Random
) -> str:
    lines: list[str] = []
    for i, (kind, points, _) in enumerate(profiles):
        z = 0.0 if i == 0 else rng.uniform(5, 30)
        lines += [
            f"SketchPlane{i} = add_sketchplane(",
            f"\torigin= [0., 0., {_num(z)}], normal= [0., 0., 1.], x_axis= [1., 0., 0.])",
            f"Loops{i} = []",
            f"Curves{i}_0 = []",
        ]
        if kind == "circle":
            (cx, cy), (radius, _) = points
            lines.append(
                f"Circle{i}_0_0 = add_circle(center= {_pair(cx, cy)}, radius= {_num(radius)})"
            )
        else:
            for k, start in enumerate(points):
                end = points[(k + 1) % len(points)]
                lines.append(
                    f"Line{i}_0_{k} = add_line(start= {_pair(*start)}, end= {_pair(*end)})"
                )
        operation = 0 if i == 0 else rng.choice((1, 2))
        lines += [
            f"Loop{i}_0 = add_loop(Curves{i}_0)",
            f"Profile{i} = add_profile(Loops{i})",
            f"Sketch{i} = add_sketch(sketch_plane= SketchPlane{i}, profile= Profile{i})",
            f"Extrude{i} = add_extrude(sketch= Sketch{i},",
            f"\toperation= {operation}, type= 0, extent_one= {_num(rng.uniform(5, 50))}, "
            "extent_two= 0.)",
        ]
    return "\n".join(lines) + "\n"


def _draw(
    profiles: Sequence[tuple[str, list[tuple[float, float]], float]], size: int
) -> Image.Image:
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)

    def px(u: float, v: float) -> tuple[float, float]:
        return ((u + EXTENT) / (2 * EXTENT) * size, (EXTENT - v) / (2 * EXTENT) * size)

    for kind, points, _ in profiles:
        if kind == "circle":
            (cx, cy), (radius, _) = points
            left, top = px(cx - radius, cy + radius)
            right, bottom = px(cx + radius, cy - radius)
            draw.ellipse([left, top, right, bottom], outline="black", width=2)
        else:
            draw.polygon([px(u, v) for u, v in points], outline="black", width=2)
    return image


def write_synthetic_dataset(
    directory: Path,
    train: int,
    val: int,
    image_size: int = 128,
    seed: int = 0,
    answers: Sequence[str] | None = None,
) -> Path:
    """Write ``train.json``, ``val.json`` and ``images/`` under ``directory``. With ``answers``
    (e.g. real OpenECAD code), those texts are used in turn instead of generated code."""
    rng = random.Random(seed)
    images = images_dir(directory)
    images.mkdir(parents=True, exist_ok=True)
    splits: dict[str, list[dict[str, object]]] = {"train": [], "val": []}
    for index in range(train + val):
        profiles = [_random_profile(rng) for _ in range(rng.randint(1, 3))]
        code = answers[index % len(answers)] if answers else _code(profiles, rng)
        name = f"{index:06d}.png"
        _draw(profiles, image_size).save(images / name)
        split = "train" if index < train else "val"
        splits[split].append(
            {
                "id": f"synthetic_{index:06d}",
                "image": name,
                "conversations": [
                    {"from": "human", "value": f"<image>\n{rng.choice(PROMPTS)}"},
                    {"from": "gpt", "value": f"{ANSWER_PREFIX}{code}```"},
                ],
            }
        )
    for split, records in splits.items():
        (directory / f"{split}.json").write_text(json.dumps(records, indent=1))
    return directory
