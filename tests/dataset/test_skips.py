"""``skipped.json``: each stage replaces only its own entry; a broken file is a warning."""

from __future__ import annotations

from pathlib import Path

from stages.dataset.manifest import rendered_images
from stages.dataset.skips import read_skips, write_skips


def test_each_stage_replaces_only_its_own_entry(tmp_path: Path) -> None:
    assert read_skips(tmp_path) == ({}, None)
    write_skips(tmp_path, "rendering", {"b": "timeout", "a": "worker_crashed"})
    write_skips(tmp_path, "conversion", {"c": "too_long"})
    write_skips(tmp_path, "rendering", {"a": "timeout"})
    skips, warning = read_skips(tmp_path)
    assert warning is None
    assert skips == {"rendering": {"a": "timeout"}, "conversion": {"c": "too_long"}}


def test_an_unreadable_file_is_no_skips_and_a_warning(tmp_path: Path) -> None:
    (tmp_path / "skipped.json").write_text("[1, 2")
    skips, warning = read_skips(tmp_path)
    assert skips == {} and warning is not None and "skipped.json" in warning
    write_skips(tmp_path, "conversion", {"c": "too_long"})
    assert read_skips(tmp_path) == ({"conversion": {"c": "too_long"}}, None)


def test_rendered_images_are_the_views_then_the_composite() -> None:
    render = {"views": ["front", "top"], "resolution": 64, "composite": True}
    assert rendered_images({"render": render}) == ("front", "top", "composite")
    assert rendered_images({"render": {**render, "composite": False}}) == ("front", "top")
    assert rendered_images({}) is None and rendered_images({"render": {"views": "x"}}) is None
