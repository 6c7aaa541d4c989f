"""The dataset folder's names: image names and model ids, where model files are found, the
split file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stages.dataset.layout import (
    DatasetError,
    count_images,
    find_model_file,
    find_model_files,
    folder_size,
    image_file_name,
    image_slots,
    model_file,
    model_id_of_image,
    normalise_id,
    read_split,
)


@pytest.mark.parametrize("model_id", ["00000007", "model_a", "0000_1234_x", "m"])
@pytest.mark.parametrize("view", ["front", "iso", "composite"])
def test_an_image_name_gives_back_its_model_id(model_id: str, view: str) -> None:
    name = image_file_name(model_id, view)
    assert name == f"{model_id}_{view}.png"
    assert model_id_of_image(name) == model_id
    assert model_id_of_image(f"sub/{name}") == model_id


def test_image_slots_name_the_files_a_layout_uses() -> None:
    per_view = image_slots("00000007", "per_view", ("front", "top"))
    assert [s.file_name for s in per_view] == ["00000007_front.png", "00000007_top.png"]
    assert [s.record_id for s in per_view] == ["00000007_front", "00000007_top"]
    assert [s.file_name for s in image_slots("m", "composite", ("front",))] == ["m_composite.png"]
    assert [s.file_name for s in image_slots("m", "iso", ("front",))] == ["m_iso.png"]
    with pytest.raises(ValueError, match="unknown layout"):
        image_slots("m", "sideways", ("front",))


@pytest.mark.parametrize("given", ["0000/00000007", "00000007.json", " 00000007 ", "a\\00000007"])
def test_ids_are_normalised_to_the_file_stem(given: str) -> None:
    assert normalise_id(given) == "00000007"


def write_model(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")
    return path


def test_a_model_file_is_found_at_its_usual_place(tmp_path: Path) -> None:
    usual = write_model(tmp_path / "cad_json" / "0000" / "00000007.json")
    assert model_file(tmp_path, "00000007") == usual
    assert find_model_file(tmp_path, "00000007") == usual


def test_a_model_file_is_found_in_a_flat_models_folder(tmp_path: Path) -> None:
    flat = write_model(tmp_path / "cad_json" / "00000061.json")
    deeper = write_model(tmp_path / "cad_json" / "batch" / "x" / "abc.json")
    assert find_model_file(tmp_path, "00000061") == flat
    assert find_model_file(tmp_path, "abc") == deeper
    assert find_model_file(tmp_path, "absent") is None
    assert find_model_files(tmp_path) == {"00000061": flat, "abc": deeper}


def test_no_models_folder(tmp_path: Path) -> None:
    assert find_model_file(tmp_path, "00000007") is None
    with pytest.raises(DatasetError, match="no cad_json/"):
        find_model_files(tmp_path)


def test_the_split_is_read_with_ids_normalised(tmp_path: Path) -> None:
    split = {"train": ["0000/00000007", "00000007", "00000061"], "validation": ["0000/00000330"]}
    (tmp_path / "split.json").write_text(json.dumps(split))
    assert read_split(tmp_path) == {"train": ["00000007", "00000061"], "val": ["00000330"]}
    (tmp_path / "split.json").write_text(json.dumps({"train": "00000007"}))
    with pytest.raises(DatasetError, match="list of model ids"):
        read_split(tmp_path)
    (tmp_path / "split.json").unlink()
    with pytest.raises(DatasetError, match=r"no split\.json"):
        read_split(tmp_path)


def test_images_are_counted_and_the_folder_measured(tmp_path: Path) -> None:
    assert count_images(tmp_path) == 0
    images = tmp_path / "images"
    images.mkdir()
    (images / "a_front.png").write_bytes(b"x" * 10)
    (images / "a_top.png").write_bytes(b"x" * 5)
    (images / "notes.txt").write_bytes(b"x" * 3)
    (tmp_path / "dataset.json").write_bytes(b"x" * 2)
    assert count_images(tmp_path) == 2
    assert folder_size(tmp_path) == 20
