"""TinyLLaVA records to tensors: read, check, encode, order into batches, collate, load.

A dataset directory holds ``train.json`` and ``val.json`` (JSON lists of ``{"id", "image",
"conversations": [{"from": "human", "value": "<image>\\n..."}, {"from": "gpt", "value": ...}]}``)
and the images under ``images/``. A broken record (bad shape, missing image) or one longer than
the context is skipped with a counted warning, never truncated: a truncated answer loses its end
token and teaches the model never to stop. Batch order is a pure function of (seed, epoch), so
a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from stages.dataset.layout import IMAGES_FOLDER, record_file
from stages.train.config import ConfigError
from stages.train.devices import Runtime
from stages.train.prompt import IGNORE_INDEX, PromptError

IMAGES_DIR = IMAGES_FOLDER
# Megabatches for length grouping: sort this many batches' worth by length, keep order random.
LENGTH_GROUP_BATCHES = 50
# Image decoding in worker processes keeps a GPU fed; on a CPU they would compete with the
# training threads for the same cores.
DEFAULT_GPU_WORKERS = 4

SkipHandler = Callable[[str, str, str], None]  # (item, message, reason)


class DatasetError(ConfigError):
    """The dataset directory cannot be trained on (not converted, unreadable, empty)."""

    def __init__(self, detail: str) -> None:
        super().__init__("dataset", detail)


@dataclass(frozen=True)
class Record:
    id: str
    image: Path
    human: str
    answer: str


@dataclass(frozen=True)
class Example:
    id: str
    image: Path
    input_ids: list[int]
    labels: list[int]


def read_split(dataset_dir: Path, split: str) -> list[Any]:
    """The raw JSON list of one split; a missing file means the dataset is not converted."""
    path = record_file(Path(dataset_dir), split)
    if not path.is_file():
        raise DatasetError(
            f"{path.name} not found in {dataset_dir}: the dataset is not converted yet; run the "
            "convert stage first (POST /training/datasets/<name>/convert)"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path.name} is not readable JSON ({exc}); convert again") from exc
    if not isinstance(raw, list):
        raise DatasetError(f"{path.name} must hold a JSON list of records")
    return raw


def parse_record(raw: Any, images_dir: Path) -> Record:
    """Check one record's shape and that its image exists and is an image; ValueError (or
    FileNotFoundError for a missing image) says what is wrong."""
    if not isinstance(raw, dict):
        raise ValueError("record is not an object")
    turns = raw.get("conversations")
    if not isinstance(turns, list) or len(turns) < 2:
        raise ValueError("conversations must hold a human and a gpt turn")
    first, second = turns[0], turns[1]
    if not all(isinstance(t, dict) and isinstance(t.get("value"), str) for t in (first, second)):
        raise ValueError("each turn must be an object with a string value")
    if first.get("from") != "human" or second.get("from") != "gpt":
        raise ValueError("turns must be human then gpt")
    image = raw.get("image")
    if not isinstance(image, str) or not image:
        raise ValueError("image must be a path")
    if Path(image).is_absolute() or ".." in Path(image).parts:
        raise ValueError(f"image {image} must be a path inside {IMAGES_DIR}/")
    path = images_dir / image
    if not path.is_file():
        raise FileNotFoundError(f"image {image} not found")
    try:
        with Image.open(path):  # reads the header only: catches files that are no image
            pass
    except OSError as exc:
        raise ValueError(f"image {image} is not readable ({exc})") from exc
    return Record(str(raw.get("id", image)), path, first["value"], second["value"])


def iter_records(
    raw_records: Sequence[Any], images_dir: Path, on_skip: SkipHandler
) -> Iterator[Record]:
    """Well-formed records in file order, lazily: only records actually used are warned about."""
    for index, raw in enumerate(raw_records):
        item = str(raw.get("id", index)) if isinstance(raw, dict) else str(index)
        try:
            yield parse_record(raw, images_dir)
        except FileNotFoundError as exc:
            on_skip(item, str(exc), "missing_image")
        except ValueError as exc:
            on_skip(item, str(exc), "bad_record")


def record_texts(raw_records: Sequence[Any], max_records: int) -> list[str]:
    """The turn texts of the first records, to train the tiny model's tokenizer on."""
    texts: list[str] = []
    for raw in raw_records[:max_records]:
        turns = raw.get("conversations") if isinstance(raw, dict) else None
        for turn in turns if isinstance(turns, list) else []:
            if isinstance(turn, dict) and isinstance(turn.get("value"), str):
                texts.append(turn["value"])
    return texts


def encode_records(
    records: Iterable[Record],
    encode: Callable[[str, str], Any],
    max_length: int,
    limit: int | None,
    on_skip: SkipHandler,
) -> list[Example]:
    """Encode records in order until ``limit`` fit in ``max_length`` tokens."""
    examples: list[Example] = []
    for record in records:
        if limit is not None and len(examples) >= limit:
            break
        try:
            encoded = encode(record.human, record.answer)
        except PromptError as exc:
            on_skip(record.id, str(exc), "bad_record")
            continue
        if len(encoded) > max_length:
            on_skip(record.id, f"{len(encoded)} tokens exceed max_length {max_length}", "too_long")
            continue
        examples.append(Example(record.id, record.image, encoded.input_ids, encoded.labels))
    return examples


class VlmDataset(Dataset):
    """Examples with their images preprocessed on access (so DataLoader workers can help)."""

    def __init__(
        self, examples: Sequence[Example], pixel_values: Callable[[list[Any]], torch.Tensor]
    ) -> None:
        self.examples = list(examples)
        self.pixel_values = pixel_values

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        example = self.examples[index]
        with Image.open(example.image) as image:
            pixels = self.pixel_values([image.convert("RGB")])[0]
        return {
            "input_ids": torch.tensor(example.input_ids, dtype=torch.long),
            "labels": torch.tensor(example.labels, dtype=torch.long),
            "pixel_values": pixels,
        }


def epoch_batches(
    lengths: Sequence[int], batch_size: int, seed: int, epoch: int, group_by_length: bool
) -> list[list[int]]:
    """The batches of one epoch, as index lists: a seeded shuffle, optionally grouped by length
    (sorted within megabatches, longest first) so little compute is spent on padding."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(len(lengths), generator=generator).tolist()
    if group_by_length:
        size = batch_size * LENGTH_GROUP_BATCHES
        groups = [order[i : i + size] for i in range(0, len(order), size)]
        order = [i for g in groups for i in sorted(g, key=lambda i: -lengths[i])]
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def ordered_batches(count: int, batch_size: int) -> list[list[int]]:
    """The batches of a split in file order (validation: no shuffle, no grouping)."""
    return [list(range(i, min(i + batch_size, count))) for i in range(0, count, batch_size)]


@dataclass(frozen=True)
class Collator:
    """Right-pads a batch to its own longest sequence. When nothing needed padding the
    attention mask is left out, so fused attention can take its plain causal path."""

    pad_token_id: int

    def __call__(self, items: list[dict[str, torch.Tensor]]) -> dict[str, Any]:
        longest = max(len(item["input_ids"]) for item in items)
        input_ids = torch.full((len(items), longest), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(items), longest), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(items), longest), dtype=torch.long)
        for row, item in enumerate(items):
            n = len(item["input_ids"])
            input_ids[row, :n] = item["input_ids"]
            labels[row, :n] = item["labels"]
            mask[row, :n] = 1
        padded = bool((mask == 0).any())
        return {
            "input_ids": input_ids,
            "labels": labels,
            "attention_mask": mask if padded else None,
            "pixel_values": torch.stack([item["pixel_values"] for item in items]),
            "num_tokens": int(mask.sum()),
        }


def make_loader(
    dataset: VlmDataset,
    batches: list[list[int]],
    collator: Collator,
    num_workers: int | None,
    runtime: Runtime,
) -> DataLoader:
    """A loader over exactly ``batches``; ``num_workers`` None means DEFAULT_GPU_WORKERS on
    CUDA and none elsewhere."""
    if num_workers is None:
        num_workers = DEFAULT_GPU_WORKERS if runtime.is_cuda else 0
    # Its own generator: creating a loader must not draw from the global RNG (dropout's),
    # or a resumed run would see different dropout masks than an uninterrupted one.
    return DataLoader(
        dataset,
        batch_sampler=batches,
        collate_fn=collator,
        num_workers=num_workers,
        pin_memory=runtime.is_cuda,
        generator=torch.Generator(),
    )
