"""The tokenizer files load offline and records encode exactly as TinyLLaVA encodes them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import sentencepiece as spm

from stages.train.prompt import PromptError
from stages.train.tinyllava.chat import (
    OPENECAD_SYSTEM,
    SYSTEM_PROMPT_KEY,
    TINYLLAVA_SYSTEM,
    TinyLlavaChat,
    chat_for,
)
from stages.train.tinyllava.config import read_config
from stages.train.tinyllava.tokenizer import load_tokenizer
from tests.train.tinyllava.checkpoints import IMAGE_TOKENS

CODE = "SketchPlane0 = add_sketchplane(\n\torigin= [0., 0., 12.5], normal= [0., 0., 1.])\n"
HUMAN = "<image>\nThis image is a view of a 3D model from a certain angle."
ANSWER = f"Of course, here are the codes:\n```python\n{CODE}```"


def sentencepiece(directory: Path) -> spm.SentencePieceProcessor:
    return spm.SentencePieceProcessor(model_file=str(directory / "tokenizer.model"))


def tinyllava_llama_encoding(sp: spm.SentencePieceProcessor, system: str) -> tuple[list, list]:
    """TinyLLaVA's llama template, step by step as its code does it, on raw SentencePiece:
    pieces around <image> each get BOS (kept on the first only), -200 between them, "</s>" is
    the end token; labels mask BOS and ``len(tokens(instruction + " ASSISTANT: ")) - 2``."""

    def tokens(text: str) -> list[int]:  # the slow Llama tokenizer: BOS, then the pieces
        eos = text.endswith("</s>")
        return [1, *sp.encode(text.removesuffix("</s>")), *([2] if eos else [])]

    def with_image(text: str) -> list[int]:
        first, second = text.split("<image>")
        return [*tokens(first), -200, *tokens(second)[1:]]

    question = HUMAN.replace("<image>", "").strip()
    prompt = f"{system} USER: <image>\n{question} ASSISTANT: {ANSWER}</s>"
    ids = with_image(prompt)
    instruction = prompt.split(" ASSISTANT: ")[0] + " ASSISTANT: "
    masked = 1 + len(with_image(instruction)) - 2
    labels = [-100] * masked + ids[masked:]
    return ids, labels


def test_the_tokenizer_is_the_checkpoints_sentencepiece(openelm_checkpoint: Path) -> None:
    tokenizer = load_tokenizer(read_config(openelm_checkpoint))
    sp = sentencepiece(openelm_checkpoint)
    assert tokenizer(CODE, add_special_tokens=False)["input_ids"] == sp.encode(CODE)
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token) == (1, 2, "<unk>")
    assert tokenizer.decode(sp.encode(CODE)) == CODE


@pytest.mark.parametrize("system", [TINYLLAVA_SYSTEM, OPENECAD_SYSTEM])
def test_a_record_encodes_as_tinyllava_encodes_it(openelm_checkpoint: Path, system: str) -> None:
    tokenizer = load_tokenizer(read_config(openelm_checkpoint))
    encoded = TinyLlavaChat(system=system).encode(tokenizer, HUMAN, ANSWER, -200, IMAGE_TOKENS)
    ids, labels = tinyllava_llama_encoding(sentencepiece(openelm_checkpoint), system)
    at = ids.index(-200)
    assert encoded.input_ids == ids[:at] + [-200] * IMAGE_TOKENS + ids[at + 1 :]
    assert encoded.labels == labels[:at] + [-100] * IMAGE_TOKENS + labels[at + 1 :]
    assert encoded.input_ids[-1] == encoded.labels[-1] == 2  # the end token is learned


def test_the_inference_prompt_ends_after_assistant(openelm_checkpoint: Path) -> None:
    tokenizer = load_tokenizer(read_config(openelm_checkpoint))
    chat = TinyLlavaChat()
    text = chat.prompt_text(HUMAN)
    assert text == (
        f"{TINYLLAVA_SYSTEM} USER: <image>\nThis image is a view of a 3D model from a certain "
        "angle. ASSISTANT:"
    )
    with pytest.raises(PromptError):
        chat.encode(tokenizer, "<image>\n<image>\ntwo images", ANSWER, -200, IMAGE_TOKENS)


def test_openecad_checkpoints_get_openecad_system_text(openelm_checkpoint, tmp_path) -> None:
    config = read_config(openelm_checkpoint)  # the directory is named OpenECADv2-tiny
    assert chat_for(config).system == OPENECAD_SYSTEM

    plain = tmp_path / "TinyLLaVA-OpenELM-450M-SigLIP-0.89B"
    shutil.copytree(openelm_checkpoint, plain)
    assert chat_for(read_config(plain)).system == TINYLLAVA_SYSTEM
    assert (
        chat_for(read_config(plain), "Yuan-Che/OpenECADv2-SigLIP-0.89B").system == OPENECAD_SYSTEM
    )

    raw = json.loads((plain / "config.json").read_text())
    (plain / "config.json").write_text(json.dumps({**raw, SYSTEM_PROMPT_KEY: "Draw parts."}))
    assert chat_for(read_config(plain), "Yuan-Che/OpenECADv2-SigLIP-0.89B").system == "Draw parts."
