"""``python -m stages.validate.pair``: one record checked as the dataset validation would.

The records here are written by hand in TinyLLaVA's format, with the golden OpenECAD code of a
sample as the answer; that a record made by ``stages.convert.pair`` passes is tested with the
convert stage (``tests/convert/test_pairs.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

from stages.dataset.records import HUMAN_PREFIX, make_record
from tests.conftest import DEEPCAD_SAMPLES, OPENECAD_GOLDEN, run_json_module
from tests.convert.datasets import write_png

SAMPLE = "00000061"
PROMPT = "This image is the top view of a 3D model. Please use OpenECAD-style API."


def golden_record() -> dict:
    code = (OPENECAD_GOLDEN / f"{SAMPLE}.py").read_text()
    answer = f"Of course, here are the codes:\n```python\n{code}```"
    return make_record(f"{SAMPLE}_top", f"{SAMPLE}_top.png", PROMPT, answer)


def write_record(path: Path, record: object) -> Path:
    path.write_text(json.dumps(record))
    return path


def test_a_good_record_with_its_image_and_model_passes(tmp_path: Path) -> None:
    record = golden_record()
    write_png(tmp_path / "images" / record["image"], 64)
    code, result = run_json_module(
        "stages.validate.pair",
        "--record", str(write_record(tmp_path / "record.json", record)),
        "--images", str(tmp_path / "images"),
        "--model", str(DEEPCAD_SAMPLES / f"{SAMPLE}.json"),
    )  # fmt: skip
    assert code == 0
    assert result["valid"] is True and result["problems"] == []
    assert all(result["checks"].values())


def test_a_broken_record_is_invalid_but_exit_0(tmp_path: Path) -> None:
    broken = golden_record()
    human = broken["conversations"][0]
    human["value"] = human["value"].removeprefix(HUMAN_PREFIX)
    code, result = run_json_module(
        "stages.validate.pair",
        "--record", str(write_record(tmp_path / "record.json", broken)),
        "--model", str(DEEPCAD_SAMPLES / "00000007.json"),
    )  # fmt: skip
    assert code == 0 and result["valid"] is False
    assert {p["check"] for p in result["problems"]} == {"image_token", "volume_mismatch"}
    assert result["checks"]["image"] is None, "no image folder given: not checked"
    assert result["checks"]["answer"] is True and result["checks"]["volume"] is False


def test_an_unreadable_record_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "record.json").write_text("{not json")
    code, answer = run_json_module(
        "stages.validate.pair", "--record", str(tmp_path / "record.json")
    )
    assert code == 2 and answer["error"] == "bad_input"
