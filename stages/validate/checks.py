"""Checks on one record's structure, and the names every problem is filed under.

Each problem names its check (``schema``, ``image_token``, ...); each check feeds one flag of
the spec's ``validation`` object, so a flag is false exactly when a problem of its checks was
found. Structure checks need nothing but the record itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import Any

from stages.dataset.layout import IMAGES_FOLDER
from stages.dataset.records import GPT, HUMAN_PREFIX, IMAGE_TOKEN, RECORD_KEYS, ROLES

# check -> the validation flag it clears
CHECK_FLAGS: dict[str, str] = {
    "missing_file": "no_missing_files",
    "schema": "format_valid",
    "no_records": "format_valid",
    "duplicate_id": "format_valid",
    "image_token": "conversations_valid",
    "turns": "conversations_valid",
    "image_missing": "all_images_exist",
    "model_images_missing": "all_images_exist",
    "image_corrupt": "images_valid",
    "image_unreadable": "images_valid",
    "image_resolution": "images_valid",
    "source_missing": "no_missing_files",
    "source_unbuildable": "answers_rebuild",
    "answer_unwrap": "answers_rebuild",
    "answer_parse": "answers_rebuild",
    "answer_build": "answers_rebuild",
    "volume_mismatch": "answers_rebuild",
    "leakage": "no_leakage",
    "token_budget": "within_token_budget",
    "model_record_missing": "all_models_recorded",
}
# A missing image is a missing file too.
EXTRA_FLAGS: dict[str, tuple[str, ...]] = {
    "image_missing": ("no_missing_files",),
    "model_images_missing": ("no_missing_files",),
}
FLAGS: tuple[str, ...] = tuple(dict.fromkeys(CHECK_FLAGS.values()))

SUMMARIES: dict[str, str] = {
    "missing_file": "record files missing",
    "schema": "records not in TinyLLaVA's schema",
    "no_records": "record files without records",
    "duplicate_id": "repeated record ids",
    "image_token": "human turns without <image> at their start",
    "turns": "conversations not alternating human/gpt",
    "image_missing": "images missing",
    "model_images_missing": "models without every rendered view's image",
    "image_corrupt": "images whose structure or checksums are broken",
    "image_unreadable": "images that do not decode",
    "image_resolution": "images of the wrong size",
    "source_missing": "records whose source model file is missing",
    "source_unbuildable": "records whose source model does not build",
    "answer_unwrap": "answers not in OpenECAD's wrapper",
    "answer_parse": "answers whose code does not parse",
    "answer_build": "answers whose code does not build a solid",
    "volume_mismatch": "answers that build a solid of another volume than their model",
    "leakage": "train records that leak into validation",
    "token_budget": "answers over the token budget",
    "model_record_missing": "models without a record that no stage said why",
}


@dataclass(frozen=True, slots=True)
class Problem:
    check: str
    record: str  # the record's id, or ``file[index]`` when it has none
    detail: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def record_label(record: Any, file_name: str, index: int) -> str:
    """How problems name a record: its id when it has a usable one."""
    if isinstance(record, dict) and isinstance(record.get("id"), str) and record["id"]:
        return record["id"]
    return f"{file_name}[{index}]"


def schema_problems(record: Any, label: str) -> list[Problem]:
    """TinyLLaVA's record shape: string id and relative image path, a list of turns each
    with string ``from`` and ``value``."""
    if not isinstance(record, dict):
        return [Problem("schema", label, f"record is a {type(record).__name__}, not an object")]
    missing = [key for key in RECORD_KEYS if key not in record]
    if missing:
        return [Problem("schema", label, f"missing keys: {', '.join(missing)}")]
    problems: list[Problem] = []
    if not isinstance(record["id"], str) or not record["id"]:
        problems.append(Problem("schema", label, "id must be a non-empty string"))
    image = record["image"]
    if not isinstance(image, str) or not image:
        problems.append(Problem("schema", label, "image must be a non-empty string"))
    elif PurePosixPath(image).is_absolute() or ".." in PurePosixPath(image).parts:
        problems.append(Problem("schema", label, f"image {image!r} is not inside {IMAGES_FOLDER}/"))
    turns = record["conversations"]
    if not isinstance(turns, list) or not turns:
        problems.append(Problem("schema", label, "conversations must be a non-empty list"))
    else:
        for number, turn in enumerate(turns):
            if not (
                isinstance(turn, dict)
                and isinstance(turn.get("from"), str)
                and isinstance(turn.get("value"), str)
            ):
                detail = f"turn {number} must be an object with string 'from' and 'value'"
                problems.append(Problem("schema", label, detail))
                break
    return problems


def image_token_problems(turns: list[dict[str, str]], label: str) -> list[Problem]:
    """The first turn holds ``<image>`` on its own first line and no other turn holds it
    (TinyLLaVA drops the image of a record without it)."""
    first = turns[0]["value"]
    if not first.startswith(HUMAN_PREFIX):
        where = "is not at the start of" if IMAGE_TOKEN in first else "is missing from"
        return [Problem("image_token", label, f"{IMAGE_TOKEN} {where} the human turn")]
    extra = first.count(IMAGE_TOKEN) - 1 + sum(t["value"].count(IMAGE_TOKEN) for t in turns[1:])
    if extra:
        return [Problem("image_token", label, f"{extra} more {IMAGE_TOKEN} than the one image")]
    return []


def turn_problems(turns: list[dict[str, str]], label: str) -> list[Problem]:
    """human, gpt, human, gpt, ...: an even number of turns, answers not empty."""
    if len(turns) < 2 or len(turns) % 2:
        return [Problem("turns", label, f"{len(turns)} turns: expected human/gpt pairs")]
    for number, turn in enumerate(turns):
        expected = ROLES[number % 2]
        if turn["from"] != expected:
            detail = f"turn {number} is from {turn['from']!r}, expected {expected!r}"
            return [Problem("turns", label, detail)]
        if expected == GPT and not turn["value"].strip():
            return [Problem("turns", label, f"turn {number} (gpt) is empty")]
    return []


def record_problems(record: Any, label: str) -> list[Problem]:
    """Every structural problem of one record (turn checks only once the schema holds)."""
    problems = schema_problems(record, label)
    if problems:
        return problems
    turns = record["conversations"]
    return image_token_problems(turns, label) + turn_problems(turns, label)


def answers_of(record: dict[str, Any]) -> list[str]:
    """The gpt turns' texts of a well-formed record."""
    return [turn["value"] for turn in record["conversations"][1::2] if turn["from"] == GPT]


def flags_for(problems_by_check: dict[str, int]) -> dict[str, bool]:
    """Each validation flag: true unless a problem of one of its checks was found."""
    flags = dict.fromkeys(FLAGS, True)
    for check, count in problems_by_check.items():
        if count:
            flags[CHECK_FLAGS[check]] = False
            for flag in EXTRA_FLAGS.get(check, ()):
                flags[flag] = False
    return flags
