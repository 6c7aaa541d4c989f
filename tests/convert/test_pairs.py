"""The single-record tool: make one pair (rendering its image), which the validate stage's
single-record check then passes. Checking records alone is tested in ``tests/validate``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import DEEPCAD_SAMPLES, OPENECAD_GOLDEN, run_json_module

SAMPLE = "00000061"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    output = tmp_path_factory.mktemp("pair")
    code, pair = run_json_module(
        "stages.convert.pair",
        "--model", str(DEEPCAD_SAMPLES / f"{SAMPLE}.json"),
        "--output", str(output),
        "--view", "top",
        "--resolution", "64",
        "--seed", "2",
    )  # fmt: skip
    assert code == 0, pair
    return pair, output


@pytest.mark.slow
def test_pair_is_a_record_with_its_rendered_image(pair: tuple[dict, Path]) -> None:
    made, output = pair
    record = made["record"]
    golden = (OPENECAD_GOLDEN / f"{SAMPLE}.py").read_text()
    assert made["code"] == golden
    assert record["id"] == f"{SAMPLE}_top" and record["image"] == f"{SAMPLE}_top.png"
    human, gpt = record["conversations"]
    assert human["value"].startswith("<image>\n") and " top " in human["value"]
    assert gpt["value"] == f"Of course, here are the codes:\n```python\n{golden}```"
    assert Path(made["image_path"]) == (output / record["image"]).resolve()
    with Image.open(made["image_path"]) as image:
        assert image.size == (64, 64)
        assert image.convert("L").getextrema()[0] < 128, "the part is drawn"


def test_a_model_without_geometry_is_exit_2_with_its_reason(tmp_path: Path) -> None:
    code, answer = run_json_module(
        "stages.convert.pair",
        "--model", str(DEEPCAD_SAMPLES / "00000176.json"),
        "--output", str(tmp_path),
    )  # fmt: skip
    assert code == 2 and answer["error"] == "no_geometry" and answer["detail"]


def write_record(path: Path, record: object) -> Path:
    path.write_text(json.dumps(record))
    return path


def test_the_made_pair_validates(pair: tuple[dict, Path], tmp_path: Path) -> None:
    made, output = pair
    record = write_record(tmp_path / "record.json", made["record"])
    code, result = run_json_module(
        "stages.validate.pair",
        "--record", str(record),
        "--images", str(output),
        "--model", str(DEEPCAD_SAMPLES / f"{SAMPLE}.json"),
    )  # fmt: skip
    assert code == 0
    assert result["valid"] is True and result["problems"] == []
    assert all(result["checks"].values())
