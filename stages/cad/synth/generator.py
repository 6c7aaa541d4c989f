"""The synthetic DeepCAD-format model generator: the project's embedded default data source.

``generate_model`` draws one part (deterministic by seed) and writes it as DeepCAD JSON;
``generate_models`` keeps only parts that pass every quality gate (``gates``) and never two
with the same geometric key; ``write_dataset`` lays them out like the DeepCAD download. The
service, its demo and the benchmarks run on these, without the 178k-model download.

How a part is made: a family (``parts_flat``, ``parts_solid``) draws it on a dimension grid in a
canonical pose, ``quirks`` re-expresses it as real files do, ``deepcad_json`` writes the JSON.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from stages.cad.model import CadError
from stages.cad.synth.deepcad_json import design_to_json
from stages.cad.synth.deepcad_layout import assign_split, check_split, model_path, write_json_atomic
from stages.cad.synth.design import Design
from stages.cad.synth.gates import gate_model
from stages.cad.synth.quirks import reshape
from stages.cad.synth.shapes import Grid
from stages.cad.synth.variety import DEFAULT_VARIETY, FAMILIES, Variety
from stages.workpool import parallel_map

__all__ = ["DEFAULT_VARIETY", "Variety", "generate_model", "generate_models", "write_dataset"]

MAX_DRAWS = 50  # draws of one family until a part fits the variety's budgets
MAX_CANDIDATES_PER_MODEL = 20  # a batch that rejects more than this is misconfigured
CHUNK_SIZE = 8  # candidates a worker judges per hand-off

RejectHandler = Callable[[str, CadError], None]


def generate_model(seed: int, model_id: str, variety: Variety = DEFAULT_VARIETY) -> dict[str, Any]:
    """One DeepCAD JSON dict drawn from ``seed`` (not yet gated). ``model_id`` names the model
    in errors. Raises CadError("synth_budget") if no draw fits the variety's budgets."""
    rng = random.Random(seed)
    design = draw_design(rng, variety, model_id)
    return design_to_json(design, rng, dict(variety.quirks))


def draw_design(rng: random.Random, variety: Variety, model_id: str = "") -> Design:
    """Draw a part from a family, redrawing until it fits the variety's budgets (DeepCAD's
    extrude, loop and curve limits and the answer length), and re-express it the ways real
    files do."""
    family = variety.draw_family(rng)  # redraws keep the family, so mixes keep their weights
    for _ in range(MAX_DRAWS):
        grid = Grid.draw(rng, variety.size_range, variety.inch_share)
        design = FAMILIES[family](rng, grid)
        if variety.admits(design):
            return reshape(design, rng, dict(variety.quirks), grid.quantum)
    raise CadError("synth_budget", f"{model_id}: no {family} within budget in {MAX_DRAWS} draws")


def candidate_seed(seed: int, index: int) -> int:
    """The seed of candidate ``index`` of a run: independent streams, stable across runs."""
    digest = hashlib.sha256(f"cadvlm-synth:{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _candidate(job: tuple[int, int, Variety]) -> tuple[dict[str, Any] | None, str, str]:
    """Generate and gate one candidate: (json, key, "") or (None, reason, detail)."""
    seed, index, variety = job
    name = f"candidate-{index}"
    try:
        data = generate_model(candidate_seed(seed, index), name, variety)
        return data, gate_model(data, name, variety), ""
    except CadError as exc:
        return None, exc.reason, exc.detail


def generate_models(
    count: int,
    seed: int,
    variety: Variety = DEFAULT_VARIETY,
    *,
    workers: int = 1,
    on_reject: RejectHandler | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``count`` gated models as ("00000001", json), ... with unique geometric keys.

    Candidates are drawn and judged in a fixed order, so the output depends only on
    (``count``, ``seed``, ``variety``), not on ``workers``; a smaller count gives a prefix of
    a larger one. Rejected candidates are reported to ``on_reject(candidate, error)``.
    """
    if count < 0:
        raise ValueError("count must not be negative")
    if count == 0:
        return
    keys: set[str] = set()
    produced = 0
    limit = MAX_CANDIDATES_PER_MODEL * count + 100
    # closing: the workers stop here and now, whether enough models, a failure or a cancel
    with contextlib.closing(_judged(seed, variety, workers)) as verdicts:
        for index, (data, key, detail) in enumerate(verdicts):
            if index >= limit:
                raise CadError(
                    "synth_yield", f"only {produced} of {count} models in {index} candidates"
                )
            if data is None or key in keys:
                if on_reject is not None:
                    error = CadError(key, detail) if data is None else CadError("duplicate", key)
                    on_reject(f"candidate-{index}", error)
                continue
            keys.add(key)
            produced += 1
            yield f"{produced:08d}", data
            if produced == count:
                return


def _judged(seed: int, variety: Variety, workers: int) -> Iterator[tuple[dict | None, str, str]]:
    """Every candidate's verdict, in candidate order (over a process pool when ``workers`` > 1;
    the pool's workers stop as soon as the caller stops reading: enough models, or a cancel)."""
    jobs = ((seed, index, variety) for index in itertools.count())
    return parallel_map(_candidate, jobs, workers, chunksize=CHUNK_SIZE)


def write_dataset(
    out_dir: Path,
    count: int,
    seed: int,
    split: tuple[float, float, float] = (0.8, 0.1, 0.1),
    variety: Variety = DEFAULT_VARIETY,
    *,
    workers: int = 1,
    on_model: Callable[[str], None] | None = None,
    on_reject: RejectHandler | None = None,
) -> dict[str, Any]:
    """Write ``count`` gated models as ``out_dir/cad_json/NNNN/NNNNNNNN.json`` and
    ``out_dir/train_val_test_split.json`` (written last); every file is written atomically.

    Returns the counts: models, train/validation/test sizes, candidates drawn and rejections
    per reason.
    """
    check_split(split)
    out_dir = Path(out_dir)
    ids: list[str] = []
    rejected: dict[str, int] = {}

    def rejected_one(candidate: str, error: CadError) -> None:
        rejected[error.reason] = rejected.get(error.reason, 0) + 1
        if on_reject is not None:
            on_reject(candidate, error)

    models = generate_models(count, seed, variety, workers=workers, on_reject=rejected_one)
    with contextlib.closing(models):  # a cancel between models also stops the workers at once
        for model_id, data in models:
            write_json_atomic(model_path(out_dir, model_id), data)
            ids.append(model_id)
            if on_model is not None:
                on_model(model_id)
    parts = assign_split(ids, split, seed)
    write_json_atomic(out_dir / "train_val_test_split.json", parts)
    return {
        "models": len(ids),
        "train": len(parts["train"]),
        "validation": len(parts["validation"]),
        "test": len(parts["test"]),
        "candidates": len(ids) + sum(rejected.values()),
        "rejected": rejected,
    }
