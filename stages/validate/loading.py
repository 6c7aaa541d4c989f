"""Reading ``train.json`` and ``val.json`` into records to check, with their file-level and
structural problems already found; and reading the source models' facts that extraction
recorded (``models.json``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stages.convert.dataset import RECORD_FILES, model_id_of_image
from stages.extract.writer import MODELS_FILE
from stages.validate.checks import Problem, answers_of, record_label, record_problems


@dataclass(frozen=True, slots=True)
class Entry:
    """A record whose schema holds: enough to check its image and answers."""

    side: str  # "train" or "val"
    label: str
    model_id: str  # from the image name: the picture is what the answer must describe
    image: str  # relative to images/
    answers: tuple[str, ...]
    text_chars: int  # all turns together


@dataclass(slots=True)
class LoadedRecords:
    entries: list[Entry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # records per side, well-formed or not
    ids: list[tuple[str, str]] = field(default_factory=list)  # (id, where) of every string id


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
        records, problem = read_record_file(dataset / name)
        loaded.counts[side] = len(records) if records is not None else 0
        if problem is not None:
            loaded.problems.append(problem)
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


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """What extraction found building a source model (one entry of ``models.json``)."""

    split: str
    volume: float  # m^3
    solids: int
    key: str


def read_model_facts(dataset: Path) -> tuple[dict[str, ModelFacts], str | None]:
    """``models.json``'s facts by model id (entries not of its shape are left out), and a
    warning when the file exists but cannot be used. No file (a dataset extracted before it was
    written) is no facts and no warning."""
    path = dataset / MODELS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return {}, f"cannot read {MODELS_FILE} ({exc}): source models are built again"
    if not isinstance(data, dict):
        return {}, f"{MODELS_FILE} is not an object: source models are built again"
    facts = {}
    for model_id, entry in data.items():
        fact = _model_fact(entry)
        if fact is not None:
            facts[model_id] = fact
    return facts, None


def _model_fact(entry: Any) -> ModelFacts | None:
    if not isinstance(entry, dict):
        return None
    split, volume, solids, key = (entry.get(k) for k in ("split", "volume", "solids", "key"))
    if not (
        isinstance(split, str)
        and isinstance(volume, int | float)
        and not isinstance(volume, bool)
        and math.isfinite(volume)
        and volume > 0.0
        and isinstance(solids, int)
        and not isinstance(solids, bool)
        and isinstance(key, str)
    ):
        return None
    return ModelFacts(split, float(volume), solids, key)
