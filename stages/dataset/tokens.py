"""How long a record's answer may be, and how its length in tokens is measured.

Shared by the stages that write records (convert drops answers over the budget) and that check
them (validate reports them).

OpenECADv2-SigLIP-0.89B has a 2048-token context. The image takes 728 tokens (SigLIP's 729
patches less the dropped first one) and the system text, the prompt and the chat markers about
150, which leaves 1170 tokens for the answer and its end token. An answer over the budget is
dropped and counted, never truncated: a cut answer loses its end token and teaches the model
never to stop.

Lengths are counted with the base model's tokenizer when one is given as a local folder, and
otherwise estimated as characters / 1.85 (what Llama's tokenizer averages on this code).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from stages.protocol import UsageError

CONTEXT_TOKENS = 2048
IMAGE_TOKENS = 728
PROMPT_TOKENS = 150  # system text + prompt + chat markers, measured on OpenECAD's template
DEFAULT_MAX_ANSWER_TOKENS = CONTEXT_TOKENS - IMAGE_TOKENS - PROMPT_TOKENS  # 1170
CHARS_PER_TOKEN = 1.85


class TokenCounter(Protocol):
    """Counts the tokens of answers; ``name`` is reported as ``token_counter``."""

    name: str

    def count(self, texts: Sequence[str]) -> list[int]: ...


class EstimatedCounter:
    """The rule of thumb when no tokenizer is at hand: rounds up, so it never under-counts
    an answer that is exactly at the budget."""

    name = "estimate"

    def count(self, texts: Sequence[str]) -> list[int]:
        return [math.ceil(len(text) / CHARS_PER_TOKEN) for text in texts]


class TokenizerCounter:
    """Exact counts with a tokenizer saved in a local folder (no hub access)."""

    def __init__(self, folder: Path) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoTokenizer  # heavy import: only when asked for

        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self.name = f"tokenizer:{Path(folder).resolve().name}"

    def count(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encoded = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]


def token_counter(tokenizer_dir: str | Path | None) -> TokenCounter:
    """The counter for ``--tokenizer DIR``; ValueError says why a folder cannot be used."""
    if tokenizer_dir is None or str(tokenizer_dir) == "":
        return EstimatedCounter()
    folder = Path(tokenizer_dir)
    if not folder.is_dir():
        raise ValueError(f"tokenizer folder {folder} does not exist")
    try:
        return TokenizerCounter(folder)
    except Exception as exc:  # transformers raises many kinds for a folder it cannot read
        raise ValueError(f"cannot load a tokenizer from {folder}: {exc}") from exc


def stage_token_counter(tokenizer_dir: str | Path | None) -> TokenCounter:
    """``token_counter`` for a stage's ``--tokenizer`` flag: a folder it cannot use is a
    UsageError (one line, exit 2)."""
    try:
        return token_counter(tokenizer_dir)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
