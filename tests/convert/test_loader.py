"""The records load the way TinyLLaVA's data loader reads them.

TinyLLaVA's ``LazySupervisedDataset`` joins ``image`` to its image folder, opens it as RGB,
finds ``<image>`` in the human turn and tokenises the answer followed by the end token; the
loss then learns the answer and its end token only. Here the project's own small byte-level
BPE tokenizer and prompt format stand in for the real model's.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from transformers import PreTrainedTokenizerBase

from stages.train.prompt import IGNORE_INDEX, PromptFormat
from stages.train.tokenizer import train_bpe_tokenizer
from tests.convert.datasets import read_records

NUM_IMAGE_TOKENS = 4


class TinyLlavaStyleDataset:
    """Just enough of TinyLLaVA's loader: image from ``image_folder / image``, turns encoded."""

    def __init__(
        self,
        records: list[dict],
        image_folder: Path,
        tokenizer: PreTrainedTokenizerBase,
        fmt: PromptFormat,
    ) -> None:
        self.records = records
        self.image_folder = image_folder
        self.tokenizer = tokenizer
        self.fmt = fmt
        self.image_token_id = tokenizer.convert_tokens_to_ids("<image>")

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        image = Image.open(self.image_folder / record["image"]).convert("RGB")
        human, gpt = record["conversations"]
        encoded = self.fmt.encode(
            self.tokenizer, human["value"], gpt["value"], self.image_token_id, NUM_IMAGE_TOKENS
        )
        return {"image": image, "input_ids": encoded.input_ids, "labels": encoded.labels}


def test_records_load_in_a_tinyllava_style_loader(converted: Path) -> None:
    records = read_records(converted, "train.json") + read_records(converted, "val.json")
    answers = [r["conversations"][1]["value"] for r in records]
    tokenizer = train_bpe_tokenizer(answers, vocab_size=600)
    loader = TinyLlavaStyleDataset(records, converted / "images", tokenizer, PromptFormat())
    eos = tokenizer.eos_token_id
    for index in range(len(loader)):
        item = loader[index]
        assert item["image"].size[0] > 0
        assert item["input_ids"].count(loader.image_token_id) == NUM_IMAGE_TOKENS
        assert item["input_ids"][-1] == eos and item["labels"][-1] == eos
        learned = [t for t in item["labels"] if t != IGNORE_INDEX]
        answer = records[index]["conversations"][1]["value"]
        assert tokenizer.decode(learned[:-1]) == answer, "the whole answer is learned, uncut"
