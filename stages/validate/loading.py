"""Reading the train and val record files into records to check, with their file-level and
structural problems already found.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stages.dataset.layout import RECORD_FILES, model_id_of_image, record_file
from stages.validate.checks import Problem, answers_of, record_label, record_problems


@dataclass(frozen=True, slots=True)
class Entry:
    """A record whose schema holds: enough to check its image and answers."""

    side: str  # "train" or "val"
    label: str
    model_id: str  # from the image name: the picture is what the answer must describe
    image: str  # relative to the images folder
    answers: tuple[str, ...]
    text_chars: int  # all turns together


@dataclass(slots=True)
class LoadedRecords:
    entries: list[Entry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # records per side, well-formed or not
    ids: list[tuple[str, str]] = field(default_factory=list)  # (id, where) of every string id
    unread: set[str] = field(default_factory=set)  # sides whose file is missing or not a list


def read_record_file(path: Path) -> tuple[list[Any] | None, Problem | None]:
    """The file's list of records, or the problem that prevents reading it."""
    name = path.name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, Problem("missing_file", name, f"no {name} in the dataset")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return None, Problem("schema", name, f"not readable as JSON: {exc}")
    if not isinstance(data, list):
        return None, Problem("schema", name, f"must hold a JSON list, not a {type(data).__name__}")
    return data, None


def load_records(dataset: Path) -> LoadedRecords:
    loaded = LoadedRecords()
    for side, name in RECORD_FILES.items():
        records, problem = read_record_file(record_file(dataset, side))
        loaded.counts[side] = len(records) if records is not None else 0
        if problem is not None:
            loaded.problems.append(problem)
            loaded.unread.add(side)
            continue
        assert records is not None
        if side == "train" and not records:
            loaded.problems.append(Problem("no_records", name, f"{name} holds no records"))
        for index, record in enumerate(records):
            label = record_label(record, name, index)
            if isinstance(record, dict) and isinstance(record.get("id"), str):
                loaded.ids.append((record["id"], f"{name}[{index}]"))
            problems = record_problems(record, label)
            loaded.problems.extend(problems)
            if any(p.check == "schema" for p in problems):
                continue
            turns = record["conversations"]
            loaded.entries.append(
                Entry(
                    side=side,
                    label=label,
                    model_id=model_id_of_image(record["image"]),
                    image=record["image"],
                    answers=tuple(answers_of(record)),
                    text_chars=sum(len(turn["value"]) for turn in turns),
                )
            )
    return loaded


def duplicate_id_problems(ids: list[tuple[str, str]]) -> list[Problem]:
    """One problem for every repeat of an id, naming where it was first seen."""
    first_seen: dict[str, str] = {}
    problems: list[Problem] = []
    for record_id, where in ids:
        if record_id in first_seen:
            detail = f"{where} repeats the id of {first_seen[record_id]}"
            problems.append(Problem("duplicate_id", record_id, detail))
        else:
            first_seen[record_id] = where
    return problems
