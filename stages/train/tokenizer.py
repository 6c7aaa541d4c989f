"""A byte-level BPE tokenizer trained on the dataset's own texts, for the tiny model.

Nothing can be downloaded, so the tiny model cannot borrow a real tokenizer. Byte-level BPE
never produces an unknown token (any byte sequence encodes), trains in well under a second on
thousands of answers, and wraps as a standard ``PreTrainedTokenizerFast`` that saves and
reloads offline.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

PAD, BOS, EOS, IMAGE = "<pad>", "<s>", "</s>", "<image>"
SPECIAL_TOKENS = (PAD, BOS, EOS, IMAGE)


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train on ``texts``; the special tokens take ids 0..3 (pad, bos, eos, image)."""
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        extra_special_tokens={"image_token": IMAGE},
        # Without this some versions add token_type_ids, which the model rejects.
        model_input_names=["input_ids", "attention_mask"],
    )
