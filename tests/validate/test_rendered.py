"""Validation of a dataset the real render and convert stages made: every model of the
dataset must have its images and a record unless a stage said why not, and an image whose
bytes were overwritten is found even where its pixels still decode."""

from __future__ import annotations

import io
import json
import shutil
import struct
from pathlib import Path

import pytest
from PIL import Image

from tests.convert.datasets import (
    EMPTY_SAMPLE,
    make_dataset,
    read_records,
    run_stage_cli,
    write_records,
)
from tests.validate.test_validate import validate

RENDERED_VIEWS = "front,top"


def run_ok(module: str, *args: str) -> None:
    done = run_stage_cli(module, *args)
    assert done.returncode == 0, done.stderr


def convert(dataset: Path) -> None:
    run_ok("stages.convert", "--dataset", str(dataset), "--workers", "1",
           "--max-answer-tokens", "8192")  # fmt: skip


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory, deepcad_samples: Path) -> Path:
    """Three real models and one without geometry, rendered (64 px) and converted."""
    dataset = make_dataset(
        tmp_path_factory.mktemp("rendered") / "samples",
        train=("00000007", "00000061", EMPTY_SAMPLE),
        val=("00000767",),
        image_names=(),
    )
    run_ok("stages.render", "--input", str(dataset), "--views", RENDERED_VIEWS,
           "--resolution", "64", "--workers", "1")  # fmt: skip
    convert(dataset)
    return dataset


@pytest.fixture
def copy_of(rendered: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(rendered, tmp_path / "copy"))


def test_a_model_the_render_failed_is_counted_as_left_out(copy_of: Path) -> None:
    result = validate(copy_of)
    assert result["valid"] is True, result["problems"]
    assert result["stats"]["models_in_dataset"] == 4
    assert result["stats"]["models_left_out"] == {"rendering": {"no_geometry": 1}}
    assert any("1 models left out" in w and "no_geometry 1" in w for w in result["warnings"])


def test_a_model_without_images_and_one_without_records_are_errors(copy_of: Path) -> None:
    for image in (copy_of / "images").glob("00000767_*.png"):
        image.unlink()  # as a render that lost the model leaves it
    convert(copy_of)  # which counts its images missing and makes it no record
    records = read_records(copy_of, "train.json")
    write_records(copy_of, "train.json", [r for r in records if "00000007" not in r["id"]])
    result = validate(copy_of)
    assert result["valid"] is False
    assert result["problem_counts"] == {"model_images_missing": 1, "model_record_missing": 1}
    by_check = {p["check"]: p for p in result["problems"]}
    assert by_check["model_images_missing"]["record"] == "00000767"
    assert "00000767_front.png, 00000767_top.png" in by_check["model_images_missing"]["detail"]
    assert by_check["model_record_missing"]["record"] == "00000007"
    assert result["validation"]["all_images_exist"] is False
    assert result["validation"]["all_models_recorded"] is False


def test_a_rendered_view_that_is_gone_is_an_error_even_without_its_record(
    copy_of: Path,
) -> None:
    records = read_records(copy_of, "val.json")
    write_records(copy_of, "val.json", [r for r in records if r["id"] != "00000767_top"])
    (copy_of / "images" / "00000767_top.png").unlink()
    result = validate(copy_of)
    assert result["problem_counts"] == {"model_images_missing": 1}


def idat_data(png: bytes) -> tuple[int, int]:
    """Offset and length of the first IDAT chunk's data, from the chunk headers."""
    offset = 8  # the PNG signature
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        if png[offset + 4 : offset + 8] == b"IDAT":
            return offset + 8, length
        offset += 12 + length  # length, type, data, CRC
    raise AssertionError("no IDAT chunk")


def decodes(png: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(png)) as image:
            image.load()
    except (OSError, SyntaxError, ValueError):
        return False
    return True


def overwritten(png: bytes, offset: int) -> bytes:
    changed = bytearray(png)
    changed[offset : offset + 7] = bytes(b ^ 0x01 for b in changed[offset : offset + 7])
    return bytes(changed)


def test_bytes_overwritten_inside_idat_are_reported(copy_of: Path) -> None:
    path = copy_of / "images" / "00000007_top.png"
    png = path.read_bytes()
    start, length = idat_data(png)
    # The worst case: 7 bytes whose change the pixel decoder alone does not notice.
    offset = next(
        (o for o in range(start, start + length - 7) if decodes(overwritten(png, o))), None
    )
    assert offset is not None, "no overwrite the decoder misses: the test proves nothing"
    path.write_bytes(overwritten(png, offset))
    result = validate(copy_of)
    assert result["problem_counts"] == {"image_corrupt": 1}
    (problem,) = result["problems"]
    assert problem["record"] == "00000007_top" and "00000007_top.png" in problem["detail"]
    assert result["validation"]["images_valid"] is False
    assert json.loads((copy_of / "validation.json").read_text())["valid"] is False


def test_a_model_whose_file_is_gone_is_source_missing_not_left_out(copy_of: Path) -> None:
    (copy_of / "cad_json" / "0000" / "00000767.json").unlink()
    convert(copy_of)  # which names it missing_model
    result = validate(copy_of)
    assert result["problem_counts"] == {"source_missing": 1}
    assert result["problems"][0]["record"] == "00000767"
    assert result["validation"]["no_missing_files"] is False
