"""Batched greedy decoding: left-padded rows decode exactly as each would alone.

For the tiny LLaVA (transformers) and native TinyLLaVA checkpoints (OpenELM, Llama), in
float32: the same tokens as one-by-one decoding with prompts of different lengths, a row that
stops early leaving the others unchanged, each row's own room, and evaluation output that
does not depend on the batch size.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch
from PIL import Image

from stages.train.evaluate import generate_in_batches
from stages.train.evaluate import main as evaluate_main
from stages.train.models import load_base_model, resolve_base_model
from stages.train.synthetic import write_synthetic_dataset
from stages.train.tiny import build_tiny_checkpoint
from stages.train.tinyllava.generate import (
    Generation,
    generate_batch,
    greedy_generate,
    greedy_generate_batch,
    left_pad,
    pad_token_id,
    prompt_ids,
    prompt_positions,
)
from tests.conftest import OPENECAD_GOLDEN
from tests.train.tinyllava.checkpoints import write_checkpoint

CORPUS = [
    "SketchPlane0 = add_sketchplane(\n\torigin= [0., 0., 0.], normal= [0., 0., 1.])",
    "Extrude0 = add_extrude(sketch= Sketch0,\n\toperation= 0, type= 0, extent_one= 25.4)",
    "This image is a view of a 3D model from a certain angle.",
] * 20
HUMANS = [
    "<image>\nDraw it.",
    "<image>\nThis image is a view of a 3D model from a certain angle. Please try to render it.",
    "<image>\nx",
    "<image>\nThis image is a view of a 3D model.",
]
CPU = torch.device("cpu")
STEPS = 10
MODELS = ["tiny", "openelm", "llama"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("generate")
    return {
        "tiny": build_tiny_checkpoint(root / "tiny", CORPUS, image_size=32),
        "openelm": write_checkpoint(root / "openelm", CORPUS, "openelm"),
        "llama": write_checkpoint(root / "llama", CORPUS, "llama"),
    }


@pytest.fixture(scope="module")
def bundles(checkpoints: dict[str, Path]):
    loaded: dict = {}

    def get(name: str):
        if name not in loaded:
            loaded[name] = load_base_model(resolve_base_model(str(checkpoints[name])))
            loaded[name].model.eval()
        return loaded[name]

    return get


def images(count: int) -> list[Image.Image]:
    gen = torch.Generator().manual_seed(1)
    return [
        Image.fromarray((torch.rand(32, 32, 3, generator=gen) * 255).byte().numpy())
        for _ in range(count)
    ]


def batch_inputs(bundle) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    pad = pad_token_id(bundle.tokenizer)
    ids, mask = left_pad([prompt_ids(bundle, human) for human in HUMANS], pad, CPU)
    return ids, mask, bundle.pixel_values(images(len(HUMANS))), pad


def one_by_one(bundle, end: set[int], steps: int) -> list[Generation]:
    """Each prompt alone: no padding, no mask, positions from the cache."""
    pixels = bundle.pixel_values(images(len(HUMANS)))
    return [
        greedy_generate(
            bundle.model, torch.tensor([prompt_ids(bundle, h)]), pixels[i : i + 1], end, steps
        )
        for i, h in enumerate(HUMANS)
    ]


@pytest.mark.parametrize("name", MODELS)
def test_a_batch_decodes_each_row_as_it_would_alone(name, bundles) -> None:
    bundle = bundles(name)
    assert len({len(prompt_ids(bundle, human)) for human in HUMANS}) == len(HUMANS)
    eos = int(bundle.tokenizer.eos_token_id)
    batched = generate_batch(bundle, bundle.model, images(len(HUMANS)), HUMANS, STEPS, CPU)
    alone = one_by_one(bundle, {eos}, STEPS)
    assert [generation for _, generation in batched] == alone
    for text, generation in batched:
        decoded = bundle.tokenizer.decode(generation.token_ids, skip_special_tokens=True)
        assert text == decoded.strip()


@pytest.mark.parametrize("name", ["tiny", "openelm"])
def test_a_row_that_stops_early_leaves_the_others_unchanged(name, bundles) -> None:
    """The end token is one the first row makes early and another row never makes."""
    bundle = bundles(name)
    free = one_by_one(bundle, set(), STEPS)
    others = [set(g.token_ids) for g in free[1:]]
    end = next(t for t in free[0].token_ids[:3] if any(t not in seen for seen in others))
    ids, mask, pixels, pad = batch_inputs(bundle)
    rooms = [STEPS] * len(HUMANS)
    batched = greedy_generate_batch(bundle.model, ids, mask, pixels, {end}, rooms, pad)
    assert batched == one_by_one(bundle, {end}, STEPS)
    assert batched[0].stopped and len(batched[0].token_ids) < 3
    assert any(not g.stopped and len(g.token_ids) == STEPS for g in batched)


def test_each_row_stops_at_its_own_room_and_decoding_ends_with_the_last(bundles) -> None:
    bundle = bundles("openelm")
    ids, mask, pixels, pad = batch_inputs(bundle)
    calls = []
    hook = bundle.model.register_forward_hook(lambda *args: calls.append(1))
    try:
        batched = greedy_generate_batch(bundle.model, ids, mask, pixels, set(), [2, 6, 1, 4], pad)
    finally:
        hook.remove()
    assert [len(g.token_ids) for g in batched] == [2, 6, 1, 4]
    assert not any(g.stopped for g in batched)
    assert len(calls) == 6  # the prompt pass makes the first token
    alone = one_by_one(bundle, set(), 6)
    assert [g.token_ids for g in batched] == [
        a.token_ids[: len(g.token_ids)] for a, g in zip(alone, batched, strict=True)
    ]


def test_each_row_counts_positions_from_its_own_first_token(bundles) -> None:
    """RoPE hides a uniform shift (attention sees only differences), so the tokens alone
    cannot show wrong positions: the model's inputs are checked instead."""
    bundle = bundles("llama")
    ids, mask, pixels, pad = batch_inputs(bundle)
    lengths = mask.sum(dim=1)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def record(module, args, kwargs):
        seen.append((kwargs["position_ids"].clone(), kwargs["attention_mask"].clone()))

    hook = bundle.model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        greedy_generate_batch(bundle.model, ids, mask, pixels, set(), [3, 3, 3, 3], pad)
    finally:
        hook.remove()
    (prompt_positions_seen, prompt_mask), *steps = seen
    assert prompt_positions_seen[:, -1].tolist() == (lengths - 1).tolist()
    assert torch.equal(prompt_mask, mask)
    for step, (positions, step_mask) in enumerate(steps, start=1):
        assert positions[:, 0].tolist() == (lengths - 1 + step).tolist()
        assert step_mask.shape[1] == ids.shape[1] + step and step_mask[:, -step:].all()


def test_the_room_is_what_each_prompt_leaves_of_the_context(bundles) -> None:
    bundle = bundles("tiny")
    eos = bundle.tokenizer.eos_token_id
    lengths = [len(prompt_ids(bundle, human)) for human in HUMANS]
    saved = bundle.max_positions
    bundle.max_positions = max(lengths) + 2

    def never_end(module, args, kwargs, output):
        output.logits[..., eos] = -1e9
        return output

    hook = bundle.model.register_forward_hook(never_end, with_kwargs=True)
    try:
        batched = generate_batch(bundle, bundle.model, images(4), HUMANS, 5, CPU)
        with pytest.raises(ValueError, match="positions"):
            generate_batch(bundle, bundle.model, images(1), [HUMANS[1] + " more words"], 5, CPU)
    finally:
        hook.remove()
        bundle.max_positions = saved
    rooms = [min(5, max(lengths) + 2 - length) for length in lengths]
    assert [len(g.token_ids) for _, g in batched] == rooms
    assert not any(g.stopped for _, g in batched)


def test_left_padding_and_positions() -> None:
    ids, mask = left_pad([[5, 6, 7], [8]], 0, CPU)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert prompt_positions(mask).tolist() == [[0, 1, 2], [0, 0, 0]]


def test_openelm_logits_of_a_left_padded_batch_equal_unpadded(bundles) -> None:
    """Real rows match; padded rows stay finite (a NaN there would poison every row)."""
    language = bundles("openelm").model.language_model
    gen = torch.Generator().manual_seed(0)
    long, short = torch.randn(1, 7, 64, generator=gen), torch.randn(1, 4, 64, generator=gen)
    padded = torch.cat([torch.cat([torch.zeros(1, 3, 64), short], dim=1), long])
    mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1], [1] * 7])
    with torch.no_grad():
        both = language(
            inputs_embeds=padded, attention_mask=mask, position_ids=prompt_positions(mask)
        )
        alone = [language(inputs_embeds=x).logits for x in (short, long)]
    assert torch.isfinite(both.logits).all()
    torch.testing.assert_close(both.logits[0, 3:], alone[0][0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(both.logits[1], alone[1][0], rtol=1e-4, atol=1e-4)


def test_records_are_generated_in_batches_in_order() -> None:
    chunks: list[list[int]] = []

    def generate_many(chunk: list[int]) -> list[tuple[str, Generation]]:
        chunks.append(chunk)
        return [(str(r), Generation([r], True)) for r in chunk]

    pairs = list(generate_in_batches(list(range(7)), generate_many, 3))
    assert chunks == [[0, 1, 2], [3, 4, 5], [6]]
    assert [(r, text) for r, (text, _) in pairs] == [(r, str(r)) for r in range(7)]


@pytest.fixture
def keep_sigterm():
    """The stage installs its own SIGTERM handler; put pytest's back."""
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_evaluation_output_does_not_depend_on_the_batch_size(
    checkpoints, tmp_path, keep_sigterm
) -> None:
    answers = [p.read_text() for p in sorted(OPENECAD_GOLDEN.glob("*.py"))[:4]]
    dataset = write_synthetic_dataset(tmp_path / "data", 0, 4, image_size=32, answers=answers)

    def evaluate(batch_size: int) -> list[dict]:
        output = tmp_path / f"batch{batch_size}"
        argv = [
            "--checkpoint", str(checkpoints["tiny"]), "--dataset", str(dataset),
            "--samples", "4", "--max-new-tokens", "8", "--device", "cpu",
            "--batch-size", str(batch_size), "--output", str(output), "--progress", "none",
        ]  # fmt: skip
        assert evaluate_main(argv) == 0
        return [json.loads(line) for line in (output / "samples.jsonl").read_text().splitlines()]

    one_by_one_rows = evaluate(1)
    assert len(one_by_one_rows) == 4
    assert evaluate(3) == one_by_one_rows


def test_a_batch_size_below_one_is_a_usage_error(capsys, keep_sigterm) -> None:
    argv = ["--checkpoint", "x", "--dataset", ".", "--batch-size", "0", "--progress", "none"]
    assert evaluate_main(argv) == 2
    assert "--batch-size must be at least 1" in capsys.readouterr().err
