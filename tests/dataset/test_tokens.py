"""The answer token budget and the two ways of counting tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from stages.dataset.tokens import (
    DEFAULT_MAX_ANSWER_TOKENS,
    EstimatedCounter,
    token_counter,
)
from stages.train.tokenizer import train_bpe_tokenizer


def test_default_budget_is_context_less_image_and_prompt() -> None:
    assert DEFAULT_MAX_ANSWER_TOKENS == 2048 - 728 - 150


def test_estimate_rounds_up_characters_over_1_85() -> None:
    assert EstimatedCounter().count(["", "a", "x" * 37, "x" * 38]) == [0, 1, 20, 21]


def test_a_local_tokenizer_counts_exactly(tmp_path: Path) -> None:
    texts = ["Line0_0_0 = add_line(start= [0., 0.], end= [1., 0.])\n"] * 20
    tokenizer = train_bpe_tokenizer(texts, vocab_size=300)
    folder = tmp_path / "tiny-bpe"
    tokenizer.save_pretrained(folder)
    counter = token_counter(folder)
    assert counter.name == "tokenizer:tiny-bpe"
    sample = ["Line0_0_0 = add_line(start= [2., 0.], end= [1., 5.])", ""]
    expected = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in sample]
    assert counter.count(sample) == expected


def test_no_folder_means_estimate_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    assert token_counter(None).name == "estimate"
    with pytest.raises(ValueError, match="does not exist"):
        token_counter(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="cannot load"):
        token_counter(tmp_path / "empty")
