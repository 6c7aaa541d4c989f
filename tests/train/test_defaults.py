"""Training defaults are decided once, in ``config``: the CLI passes only what was given."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from stages.train.__main__ import LAUNCH_OPTIONS, build_parser
from stages.train.config import MODE_DEFAULTS, TrainConfig, build_config

REQUIRED = ["--dataset", "d", "--output", "o"]


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.dest != "help" and not a.required]


def test_every_cli_option_defaults_to_not_given() -> None:
    """A literal default here would silently override the mode's default."""
    parser = build_parser()
    assert {a.dest: a.default for a in _options(parser)} == dict.fromkeys(
        (a.dest for a in _options(parser)), None
    )
    args = vars(parser.parse_args(REQUIRED))
    assert {k: v for k, v in args.items() if k not in ("dataset", "output")} == dict.fromkeys(
        (a.dest for a in _options(parser)), None
    )


def test_every_cli_option_is_a_config_field_of_the_same_name() -> None:
    """All but where torchrun's ranks meet (read by the launcher, not the run)."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert {a.dest for a in _options(build_parser())} - set(LAUNCH_OPTIONS) <= fields
    assert "--gradient-accumulation" in build_parser()._option_string_actions


@pytest.mark.parametrize("mode", ["full", "test-run"])
def test_nothing_given_yields_the_mode_defaults(mode: str) -> None:
    config = build_config(Path("d"), Path("o"), mode)
    given_nothing = build_config(
        Path("d"), Path("o"), mode, **dict.fromkeys(MODE_DEFAULTS["full"], None)
    )
    assert given_nothing == config
    for name, value in MODE_DEFAULTS[mode].items():
        assert getattr(config, name) == value, name
    if mode == "test-run":
        assert config == TrainConfig(dataset=Path("d"), output=Path("o"))


def test_full_mode_defaults_to_openecads_recipe() -> None:
    """LoRA r 128 / alpha 256 / dropout 0.05, lr 1e-4 (cosine), 3 % warm-up, global batch 8;
    not the test-run's recipe for the tiny model."""
    full = build_config(Path("d"), Path("o"), "full")
    assert (full.lora_r, full.lora_alpha, full.lora_dropout) == (128, 256, 0.05)
    assert (full.learning_rate, full.warmup_ratio) == (1e-4, 0.03)
    assert full.batch_size * full.gradient_accumulation == 8


def test_the_cli_resolves_the_mode_default_when_a_flag_is_absent() -> None:
    args = build_parser().parse_args([*REQUIRED, "--mode", "full", "--epochs", "2"])
    skip = ("dataset", "output", "mode", *LAUNCH_OPTIONS)
    options = {k: v for k, v in vars(args).items() if k not in skip}
    config = build_config(args.dataset, args.output, args.mode, **options)
    assert config.epochs == 2
    assert config.gradient_accumulation == MODE_DEFAULTS["full"]["gradient_accumulation"]
    assert build_config(Path("d"), Path("o"), None).mode == "test-run"


def test_a_config_saved_under_the_old_accumulation_name_still_resumes() -> None:
    saved = build_config(Path("d"), Path("o"), "full").to_json()
    saved["grad_accum"] = saved.pop("gradient_accumulation") + 1
    assert TrainConfig.from_json(saved).gradient_accumulation == 3
