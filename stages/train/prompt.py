"""How one conversation becomes token ids and labels for a given model family.

The human turn is ``<image>\\n<prompt>``; the ``<image>`` placeholder becomes as many image
tokens as the vision tower yields. Only the answer and its end token are learned: the image,
the system text and the prompt are labelled -100 (padding is masked by the collator).
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

IGNORE_INDEX = -100
IMAGE_PLACEHOLDER = "<image>"


class PromptError(ValueError):
    """A conversation this format cannot encode (no or several image placeholders)."""


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass(frozen=True)
class PromptFormat:
    """A plain "USER: ... ASSISTANT: ..." chat layout (LLaVA-1.5 style).

    ``system`` is prepended to the first user turn; training and inference must use the same
    one (OpenECAD replaced it with a task description).
    """

    system: str = ""
    user_prefix: str = "USER: "
    assistant_prefix: str = " ASSISTANT: "

    def encode(
        self,
        tokenizer: PreTrainedTokenizerBase,
        human: str,
        answer: str,
        image_token_id: int,
        num_image_tokens: int,
    ) -> Encoded:
        if human.count(IMAGE_PLACEHOLDER) != 1:
            raise PromptError(f"the human turn must hold exactly one {IMAGE_PLACEHOLDER}")
        before, after = human.split(IMAGE_PLACEHOLDER)

        def ids(text: str) -> list[int]:
            return tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

        bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
        prompt = (
            bos
            + ids(self.system + self.user_prefix + before)
            + [image_token_id] * num_image_tokens
            + ids(after + self.assistant_prefix)
        )
        reply = [*ids(answer), tokenizer.eos_token_id]
        return Encoded(prompt + reply, [IGNORE_INDEX] * len(prompt) + reply)
