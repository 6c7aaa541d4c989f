"""PNG writing and the validity check that resuming relies on."""

from __future__ import annotations

import numpy as np

from stages.render.images import encode_png, is_valid_png, write_atomic


def picture(size: int) -> np.ndarray:
    image = np.full((size, size, 3), 255, dtype=np.uint8)
    image[size // 4 : size // 2, size // 4 :] = (40, 90, 200)
    return image


def test_written_png_is_valid_only_at_its_own_size(tmp_path):
    path = tmp_path / "sub" / "m_front.png"
    write_atomic(path, encode_png(picture(64)))
    assert is_valid_png(path, 64)
    assert not is_valid_png(path, 128)
    assert [p.name for p in path.parent.iterdir()] == ["m_front.png"], "no temporary left"


def test_truncated_or_foreign_files_are_not_valid(tmp_path):
    data = encode_png(picture(64))
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "text.png"
    garbage.write_bytes(b"not a picture at all")
    assert not is_valid_png(truncated, 64)
    assert not is_valid_png(garbage, 64)
    assert not is_valid_png(tmp_path / "missing.png", 64)


def test_atomic_write_replaces_the_old_file(tmp_path):
    path = tmp_path / "m_top.png"
    path.write_bytes(b"old")
    write_atomic(path, encode_png(picture(64)))
    assert is_valid_png(path, 64)


def test_grey_pictures_are_stored_as_one_channel_and_read_back_equal(tmp_path):
    from PIL import Image

    grey = np.repeat(picture(64)[:, :, :1], 3, axis=2)
    for name, image in (("grey", grey), ("colour", picture(64))):
        path = tmp_path / f"{name}.png"
        write_atomic(path, encode_png(image))
        with Image.open(path) as stored:
            assert stored.mode == ("L" if name == "grey" else "RGB")
            assert np.array_equal(np.asarray(stored.convert("RGB")), image)
