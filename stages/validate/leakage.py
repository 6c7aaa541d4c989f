"""Train/validation leakage: a model, a shape or an answer seen on both sides.

A validation score means something only for models the training never saw. Leaks are found
three ways: the same model id on both sides (or a record on the side its ``split.json`` entry
does not say), the same geometric key (a duplicate part under another id) and the same answer
text. Each leaking record gets one problem listing every way it leaks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence

from stages.dataset.layout import RECORD_FILES, SPLIT_FILE, SPLIT_KEYS
from stages.validate.checks import Problem
from stages.validate.loading import Entry

OTHER_SIDE = {"train": "val", "val": "train"}


def leakage_problems(
    entries: Sequence[Entry],
    split: Mapping[str, Sequence[str]] | None,
    keys: Mapping[str, Hashable],
) -> list[Problem]:
    """``keys`` maps answer text to its solid's geometric key (answers that built)."""
    models: dict[str, set[str]] = defaultdict(set)
    answers: dict[str, dict[str, str]] = defaultdict(dict)  # side -> answer -> a record
    shapes: dict[str, dict[Hashable, str]] = defaultdict(dict)  # side -> key -> a model id
    for entry in entries:
        models[entry.side].add(entry.model_id)
        for answer in entry.answers:
            answers[entry.side].setdefault(answer, entry.label)
            if answer in keys:
                shapes[entry.side].setdefault(keys[answer], entry.model_id)
    listed = None
    if split is not None:
        listed = {side: set(split.get(side, ())) for side in RECORD_FILES}

    problems: list[Problem] = []
    for entry in entries:
        other = OTHER_SIDE[entry.side]
        reasons: list[str] = []
        if entry.side == "train" and entry.model_id in models[other]:
            reasons.append(f"model {entry.model_id} also has records in {RECORD_FILES[other]}")
        if listed is not None and entry.model_id in listed[other] - listed[entry.side]:
            reasons.append(f"{SPLIT_FILE} lists model {entry.model_id} under {SPLIT_KEYS[other]}")
        if entry.side == "train":
            for answer in entry.answers:
                if answer in answers[other]:
                    reasons.append(
                        f"same answer as {answers[other][answer]} in {RECORD_FILES[other]}"
                    )
                key = keys.get(answer)
                if key is not None and key in shapes[other]:
                    reasons.append(
                        f"same geometric key as {shapes[other][key]} in {RECORD_FILES[other]}"
                    )
        if reasons:
            problems.append(Problem("leakage", entry.label, "; ".join(reasons)))
    return problems
