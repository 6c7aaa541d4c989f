"""Prompt wordings: enough of them, OpenECAD's own among them, views named, seeded choice."""

from __future__ import annotations

from collections import Counter

import pytest

from stages.convert.templates import (
    OPENECAD_PROMPTS,
    TEMPLATES,
    prompt_text,
    template_index,
)


def test_each_layout_has_at_least_eight_distinct_wordings() -> None:
    for layout, templates in TEMPLATES.items():
        assert len(set(templates)) == len(templates) >= 8, layout


def test_openecads_three_prompts_are_kept_verbatim() -> None:
    every = {t for templates in TEMPLATES.values() for t in templates}
    assert set(OPENECAD_PROMPTS) <= every
    assert OPENECAD_PROMPTS[1] == TEMPLATES["composite"][0]  # the 4-view sheet
    assert OPENECAD_PROMPTS[0] == TEMPLATES["iso"][0]


@pytest.mark.parametrize("view", ["front", "top", "right", "left"])
def test_per_view_prompts_name_their_view(view: str) -> None:
    for index in range(len(TEMPLATES["per_view"])):
        text = TEMPLATES["per_view"][index].format(view=view)
        assert f" {view} " in text


def test_choice_depends_on_seed_and_record_only() -> None:
    ids = [f"{n:08d}_front" for n in range(400)]
    first = [prompt_text("per_view", "front", randomize=True, seed=5, record_id=i) for i in ids]
    again = [prompt_text("per_view", "front", randomize=True, seed=5, record_id=i) for i in ids]
    other = [prompt_text("per_view", "front", randomize=True, seed=6, record_id=i) for i in ids]
    assert first == again and first != other
    usage = Counter(template_index(8, 5, i) for i in ids)
    assert set(usage) == set(range(8)) and min(usage.values()) > 20  # roughly uniform


def test_without_randomizing_the_first_wording_is_used() -> None:
    for layout, templates in TEMPLATES.items():
        text = prompt_text(layout, "top", randomize=False, seed=9, record_id="x_top")
        assert text == templates[0].format(view="top")


def test_unknown_layout_is_refused() -> None:
    with pytest.raises(ValueError, match="layout"):
        prompt_text("sideways", "front", randomize=False, seed=0, record_id="x")
