"""The writer must reproduce OpenECAD's converter byte for byte on every real sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from stages.cad.deepcad import load_deepcad
from stages.cad.model import CadModel
from stages.cad.openecad import write_code
from tests.conftest import DEEPCAD_SAMPLES, OPENECAD_GOLDEN

SAMPLES = sorted(DEEPCAD_SAMPLES.glob("*.json"))


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_code_equals_openecads_golden_output(sample: Path) -> None:
    golden = (OPENECAD_GOLDEN / f"{sample.stem}.py").read_bytes().decode("ascii")
    assert write_code(load_deepcad(sample)) == golden


def test_samples_cover_every_plane_form() -> None:
    """The goldens exercise absolute planes and every relative form the writer can choose."""
    codes = "".join(write_code(load_deepcad(sample)) for sample in SAMPLES)
    for form in ('type = "sameplane"', 'type = "extent_one"', 'type= "line"', "reverse = True"):
        assert form in codes
    assert len(SAMPLES) == 15


def test_model_without_extrudes_is_the_empty_program() -> None:
    assert write_code(CadModel(id="empty", extrudes=())) == ""
