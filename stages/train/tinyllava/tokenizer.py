"""The checkpoint's own tokenizer files, loaded offline as TinyLLaVA configured them.

OpenELM checkpoints carry Llama-2's SentencePiece ``tokenizer.model``; transformers converts it
with the ``sentencepiece`` and ``protobuf`` packages, so their absence is said up front rather
than as a confusing fallback error. TinyLLaVA pads with the unknown token (``pad_token`` in
its config) on the right, up to ``tokenizer_model_max_length``.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from stages.train.tinyllava.config import CheckpointError, TinyLlavaConfig

SENTENCEPIECE_FILE = "tokenizer.model"
FAST_FILE = "tokenizer.json"
_SENTENCEPIECE_NEEDS = ("sentencepiece", "google.protobuf")


def load_tokenizer(config: TinyLlavaConfig) -> Any:
    from transformers import AutoTokenizer

    directory = config.directory
    if (directory / SENTENCEPIECE_FILE).is_file() and not (directory / FAST_FILE).is_file():
        absent = [name for name in _SENTENCEPIECE_NEEDS if not _importable(name)]
        if absent:
            raise CheckpointError(
                f"{directory} has a SentencePiece tokenizer; reading it needs the packages "
                f"{', '.join(absent)} (pip install sentencepiece protobuf)"
            )
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            directory,
            config=_decoder_config(config),
            local_files_only=True,
            model_max_length=config.max_length,
            padding_side=config.padding_side,
        )
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{directory}: its tokenizer files do not load ({exc})") from exc
    if tokenizer.eos_token_id is None:
        raise CheckpointError(f"{directory}: the tokenizer has no end-of-sequence token")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = config.pad_token or tokenizer.unk_token or tokenizer.eos_token
    return tokenizer


def _decoder_config(config: TinyLlavaConfig) -> Any:
    """The decoder's config, so AutoTokenizer does not try to read the ``tinyllava`` config.json
    (unknown to transformers) to find the tokenizer family."""
    from transformers import CONFIG_MAPPING, PretrainedConfig

    model_type = config.text_model_type
    if model_type in CONFIG_MAPPING:
        return CONFIG_MAPPING[model_type].from_dict(config.text_config)
    return PretrainedConfig()


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False
