"""Does every model of the dataset have its images and a record?

The records cannot speak for a model that has none: a model a render lost has no images,
convert then makes it no record, and every record that exists is fine. So validation also
walks the dataset's models (``split.json``, ``models.json`` and ``cad_json/``) and checks that
each has every image the manifest's ``render`` section says was drawn, and at least one record.

A gap that a stage named in ``skipped.json`` with its reason (a model the render failed, an
answer over the token budget) is counted as left out, per stage and reason, and is not an
error. Any other gap is a problem: ``model_images_missing`` (rendered images no record uses,
since a record's own image is checked with the record), ``source_missing`` (a model without
records whose file is gone) or ``model_record_missing``. A model whose images are missing is
not also reported for its missing record: that is the reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from stages.dataset.layout import (
    IMAGES_FOLDER,
    MODELS_FOLDER,
    RECORD_FILES,
    SKIPS_FILE,
    image_file_name,
)
from stages.dataset.manifest import CONVERSION, RENDERING
from stages.dataset.skips import Skips
from stages.protocol import count_text
from stages.validate.checks import Problem
from stages.validate.loading import Entry


@dataclass(slots=True)
class Coverage:
    problems: list[Problem] = field(default_factory=list)
    left_out: dict[str, Counter[str]] = field(default_factory=dict)  # stage -> reason -> models

    def leave_out(self, stage: str, reason: str) -> None:
        self.left_out.setdefault(stage, Counter())[reason] += 1

    def left_out_counts(self) -> dict[str, dict[str, int]]:
        return {stage: dict(reasons.most_common()) for stage, reasons in self.left_out.items()}


def dataset_models(
    split: Mapping[str, Sequence[str]] | None, *indexes: Iterable[str]
) -> dict[str, str | None]:
    """Every model of the dataset and its side in the split (None when the split lacks it):
    the split's order first, then models only ``models.json`` or ``cad_json/`` hold."""
    models: dict[str, str | None] = {}
    for side, ids in (split or {}).items():
        for model_id in ids:
            models.setdefault(model_id, side)
    for index in indexes:
        for model_id in index:
            models.setdefault(model_id, None)
    return models


def check_coverage(
    models: Mapping[str, str | None],
    entries: Sequence[Entry],
    images: Collection[str],
    rendered: Sequence[str] | None,
    skips: Skips,
    unread_sides: Collection[str],
    sources: Collection[str],
) -> Coverage:
    """``images``: the names in the images folder; ``rendered``: the image names each model
    got (None: not rendered as a dataset, images are not checked); ``unread_sides``: sides
    whose record file is missing or unreadable (already a problem: its models' records are
    not looked for); ``sources``: the models that have a file in the models folder."""
    used = {entry.image for entry in entries}
    recorded = {entry.model_id for entry in entries}
    render_skips, convert_skips = skips.get(RENDERING, {}), skips.get(CONVERSION, {})
    coverage = Coverage()
    for model_id, side in models.items():
        names = (image_file_name(model_id, view) for view in rendered or ())
        missing = [name for name in names if name not in images]
        if missing and model_id in render_skips:
            coverage.leave_out(RENDERING, render_skips[model_id])
            continue
        unreported = [name for name in missing if name not in used]
        if unreported:
            detail = f"no {IMAGES_FOLDER}/{', '.join(unreported)} and the render named no reason"
            coverage.problems.append(Problem("model_images_missing", model_id, detail))
        if model_id in recorded or missing or _unread(side, unread_sides):
            continue
        if model_id not in sources:  # no file is no data, whatever convert made of it
            detail = f"no {MODELS_FOLDER} file for model {model_id}"
            coverage.problems.append(Problem("source_missing", model_id, detail))
        elif model_id in convert_skips:
            coverage.leave_out(CONVERSION, convert_skips[model_id])
        else:
            files = " or ".join(RECORD_FILES.values())
            detail = f"no record in {files} and {SKIPS_FILE} names no reason"
            coverage.problems.append(Problem("model_record_missing", model_id, detail))
    return coverage


def _unread(side: str | None, unread_sides: Collection[str]) -> bool:
    """Whether the model's records could be in a file that was not read."""
    return side in unread_sides if side is not None else bool(unread_sides)


def left_out_warning(counts: Mapping[str, Mapping[str, int]]) -> list[str]:
    """One sentence for the models stages left out and said why."""
    total = sum(n for reasons in counts.values() for n in reasons.values())
    if not total:
        return []
    parts = "; ".join(f"{stage}: {count_text(reasons)}" for stage, reasons in counts.items())
    return [f"{total} models left out by a stage that said why ({parts})"]
