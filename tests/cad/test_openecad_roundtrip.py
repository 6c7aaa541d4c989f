"""Write -> parse_code -> build_solid gives the original solid back (volume within 0.5%):
for every real sample that builds and for a few hundred synthetic models (the benchmark,
scripts/bench/codegen.py, does 1,000)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stages.cad.deepcad import load_deepcad, parse_deepcad
from stages.cad.model import CadError, CadModel
from stages.cad.openecad import parse_code, write_code
from stages.cad.solid import build_solid
from stages.cad.synth import generate_models
from tests.conftest import DEEPCAD_SAMPLES

VOLUME_TOLERANCE = 0.005
SYNTHETIC_COUNT = 300
SYNTHETIC_SEED = 4


def volume_error(model: CadModel) -> float:
    original = build_solid(model).volume
    rebuilt = build_solid(parse_code(write_code(model), model.id)).volume
    return abs(rebuilt - original) / original


@pytest.mark.parametrize("sample", sorted(DEEPCAD_SAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_real_samples_round_trip(sample: Path) -> None:
    model = load_deepcad(sample)
    try:
        build_solid(model)
    except CadError as exc:
        assert exc.reason == "no_geometry"
        assert write_code(model) == ""
        return
    assert volume_error(model) < VOLUME_TOLERANCE


@pytest.mark.slow
@pytest.mark.slow
def test_synthetic_models_round_trip() -> None:
    errors = {
        model_id: volume_error(parse_deepcad(data, model_id))
        for model_id, data in generate_models(SYNTHETIC_COUNT, SYNTHETIC_SEED)
    }
    assert len(errors) == SYNTHETIC_COUNT
    worst = max(errors, key=errors.__getitem__)
    assert errors[worst] < VOLUME_TOLERANCE, f"{worst}: volume off by {errors[worst]:.2%}"


def test_relative_planes_are_used_by_synthetic_models() -> None:
    """The synthetic set exercises the relative plane forms the round trip must honour."""
    codes = "".join(
        write_code(parse_deepcad(data, model_id)) for model_id, data in generate_models(60, 1)
    )
    assert "add_sketchplane_ref" in codes
    assert "reverse = True" in codes
