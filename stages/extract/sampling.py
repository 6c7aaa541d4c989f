"""Deterministic choices: which split a model belongs to and in what order models are tried.

Everything here depends only on model ids, positions and the seed, never on the machine, the
number of workers or the Python hash seed, so an extract is reproducible from its manifest.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Iterator, Sequence

TRAIN = "train"
VALIDATION = "validation"
# A flat folder of DeepCAD files has no split file: this share of its ids is validation.
FLAT_VALIDATION_SHARE = 0.1


def seeded_order(ids: Sequence[str], seed: int, split: str) -> list[str]:
    """``ids`` shuffled by ``seed``: taking the first N is a uniform sample, and the ones
    after them are the replacements, in a fixed order."""
    order = list(ids)
    random.Random(f"{seed}:{split}").shuffle(order)
    return order


def hashed_split(model_id: str, validation_share: float = FLAT_VALIDATION_SHARE) -> str:
    """The split of a model that no split file names, from a hash of its id alone (stable
    when files are added or removed, unlike a split by position)."""
    digest = hashlib.sha256(f"split:{model_id}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") / 2**64
    return VALIDATION if bucket < validation_share else TRAIN


def interleaved_splits(train_size: int, val_size: int) -> Iterator[str]:
    """Split labels for a stream of generated models: any prefix holds train and validation
    in the requested ratio, so the first ``train_size + val_size`` are exactly those sizes and
    replacements further down keep the same mix."""
    total = train_size + val_size
    position = 0
    while True:
        before = position * val_size // total
        after = (position + 1) * val_size // total
        yield VALIDATION if after > before else TRAIN
        position += 1


def unique_in_order(ids: Iterable[str]) -> list[str]:
    """Drop repeated ids, keeping the first occurrence."""
    seen: set[str] = set()
    result = []
    for model_id in ids:
        if model_id not in seen:
            seen.add(model_id)
            result.append(model_id)
    return result
