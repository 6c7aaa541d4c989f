"""TinyLLaVA's chat template, tokenized exactly as TinyLLaVA does, with OpenECAD's system text.

A training text is ``{system} USER: <image>\\n{question} ASSISTANT: {answer}{eos}``. TinyLLaVA
tokenizes the pieces around ``<image>`` separately (only the first keeps its BOS) and puts one
-200 placeholder between them; the prompt up to ``ASSISTANT:`` is masked and the answer with its
end token is learned. The inference prompt is the same text cut after ``ASSISTANT:``. Here the
placeholder is then expanded to one id per image token (see ``model.py``).

OpenECAD replaced the system text with a task description; training and inference must use the
same one, so an exported checkpoint records it in its config (``cadvlm_system_prompt``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stages.train.prompt import IGNORE_INDEX, IMAGE_PLACEHOLDER, Encoded, PromptError, PromptFormat
from stages.train.tinyllava.config import TinyLlavaConfig

TINYLLAVA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. The assistant "
    "gives helpful, detailed, and polite answers to the user's questions."
)
OPENECAD_SYSTEM = (
    "You are a mechanical part designer. Given an image of a 3D model, write OpenECAD style "
    "code in Python 3 that builds it from sketches and extrusions. Curves are appended to "
    "their loop and loops to their profile automatically."
)
SYSTEM_PROMPT_KEY = "cadvlm_system_prompt"


@dataclass(frozen=True)
class TinyLlavaChat(PromptFormat):
    """The ``USER: ... ASSISTANT: ...`` template TinyLLaVA uses for its Llama-style decoders."""

    system: str = TINYLLAVA_SYSTEM
    user_prefix: str = "USER: "
    assistant_prefix: str = " ASSISTANT:"

    def prompt_text(self, human: str) -> str:
        """The inference prompt; TinyLLaVA moves ``<image>`` to the front of the question."""
        if human.count(IMAGE_PLACEHOLDER) != 1:
            raise PromptError(f"the human turn must hold exactly one {IMAGE_PLACEHOLDER}")
        question = human.replace(IMAGE_PLACEHOLDER, "").strip()
        user = f"{self.user_prefix}{IMAGE_PLACEHOLDER}\n{question}"
        return f"{self.system} {user}{self.assistant_prefix}"

    def encode(
        self,
        tokenizer: Any,
        human: str,
        answer: str,
        image_token_id: int,
        num_image_tokens: int,
    ) -> Encoded:
        prompt = self.prompt_text(human)
        prompt_ids = tokenize_with_image(tokenizer, prompt, image_token_id)
        full_ids = tokenize_with_image(
            tokenizer, f"{prompt} {answer}{tokenizer.eos_token}", image_token_id
        )
        if full_ids[: len(prompt_ids)] != prompt_ids or full_ids[-1] != tokenizer.eos_token_id:
            raise PromptError("the answer does not tokenize apart from the prompt")
        labels = [IGNORE_INDEX] * len(prompt_ids) + full_ids[len(prompt_ids) :]
        return expand_image(full_ids, labels, image_token_id, num_image_tokens)


def tokenize_with_image(tokenizer: Any, text: str, image_token_id: int) -> list[int]:
    """TinyLLaVA's ``tokenizer_image_token``: each piece around ``<image>`` tokenized on its
    own, BOS kept only on the first, one ``image_token_id`` between pieces."""
    pieces = [tokenizer(piece)["input_ids"] for piece in text.split(IMAGE_PLACEHOLDER)]
    bos = tokenizer.bos_token_id
    strip_bos = bos is not None and pieces[0][:1] == [bos]
    ids = list(pieces[0])
    for piece in pieces[1:]:
        ids += [image_token_id, *(piece[1:] if strip_bos else piece)]
    return ids


def expand_image(
    ids: Sequence[int], labels: Sequence[int], image_token_id: int, count: int
) -> Encoded:
    """Each image placeholder becomes ``count`` placeholders, never learned."""
    out_ids: list[int] = []
    out_labels: list[int] = []
    for token, label in zip(ids, labels, strict=True):
        if token == image_token_id:
            out_ids += [image_token_id] * count
            out_labels += [IGNORE_INDEX] * count
        else:
            out_ids.append(token)
            out_labels.append(label)
    return Encoded(out_ids, out_labels)


def chat_for(config: TinyLlavaConfig, spec: str = "") -> TinyLlavaChat:
    """The system text a checkpoint was trained with: its recorded one, OpenECAD's for an
    OpenECAD checkpoint (by its name or hub id), else TinyLLaVA's own."""
    recorded = config.raw.get(SYSTEM_PROMPT_KEY)
    if isinstance(recorded, str) and recorded.strip():
        return TinyLlavaChat(system=recorded)
    if any("openecad" in name.lower() for name in (spec, *config.names)):
        return TinyLlavaChat(system=OPENECAD_SYSTEM)
    return TinyLlavaChat()
