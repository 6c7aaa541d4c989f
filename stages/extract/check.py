"""Does a candidate model make it into a dataset? Parse it, apply the filters, build its
solid within a time limit and compute its geometric key (for deduplication). Its volume and
number of solids come back too: the dataset records them (``models.json``) so that later
stages need not build the model again.

``check_candidate`` runs in a pool worker and never raises: anything wrong with the model
(or a bug it trips) comes back as a result with a short ``reason``, so one bad model is a
counted skip and never the end of a batch.

The geometry kernel (numpy, scipy, manifold3d, trimesh: about 90 MB) is imported inside the
worker function, not here: the stage's parent process only schedules and copies files, and
keeping the kernel out of it keeps the stage's memory to the workers' share.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import partial

from stages.cad.limits import BUILD_TIME_LIMIT_S as DEFAULT_TIME_LIMIT
from stages.cad.model import CadError, CadModel
from stages.executors import LOCAL_EXECUTOR, Executor, ordered_pool
from stages.extract.sources import Candidate
from stages.workpool import OrderedPool


@dataclass(frozen=True, slots=True)
class CheckSettings:
    """What every candidate must pass: ``max_extrudes`` counts extrudes per profile (as
    DeepCAD does), ``max_curves`` counts the curves of the whole model."""

    time_limit: float = DEFAULT_TIME_LIMIT
    max_extrudes: int | None = None
    max_curves: int | None = None


@dataclass(frozen=True, slots=True)
class CheckResult:
    """A usable model has a ``key``, ``volume`` (m^3) and ``solids``; an unusable one a
    ``reason`` and its ``detail``."""

    model_id: str
    key: str | None = None
    volume: float | None = None
    solids: int | None = None
    reason: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.reason is None


def check_candidate(candidate: Candidate, settings: CheckSettings) -> CheckResult:
    from stages.cad.key import geometric_key
    from stages.cad.solid import build_solid

    try:
        model = _parse(candidate)
        _apply_filters(model, settings)
        solid = build_solid(model, time_limit=settings.time_limit, mesh_extras=False)
        return CheckResult(
            candidate.model_id,
            key=geometric_key(solid),
            volume=solid.volume,
            solids=solid.num_solids,
        )
    except CadError as exc:
        return CheckResult(candidate.model_id, reason=exc.reason, detail=exc.detail or str(exc))
    except Exception as exc:  # a model that trips a bug is still only one skipped model
        return CheckResult(
            candidate.model_id, reason="check_error", detail=f"{type(exc).__name__}: {exc}"
        )


def crashed_result(candidate: Candidate, message: str) -> CheckResult:
    return CheckResult(candidate.model_id, reason="worker_crashed", detail=message)


def checking_pool(
    settings: CheckSettings, workers: int, executor: Executor = LOCAL_EXECUTOR
) -> OrderedPool[Candidate, CheckResult]:
    """A pool that checks candidates in ``workers`` processes (or Ray tasks), results in
    order."""
    work = partial(check_candidate, settings=settings)
    return ordered_pool(work, workers, crashed_result, executor=executor)


def _parse(candidate: Candidate) -> CadModel:
    from stages.cad.deepcad import load_deepcad, parse_deepcad

    if candidate.text is not None:
        try:
            data = json.loads(candidate.text)
        except ValueError as exc:
            raise CadError("bad_json", str(exc)) from exc
        return parse_deepcad(data, candidate.model_id)
    if candidate.path is None or not os.path.isfile(candidate.path):
        raise CadError("missing_file", f"no file {candidate.path}")
    return load_deepcad(candidate.path)


def _apply_filters(model: CadModel, settings: CheckSettings) -> None:
    extrudes = len(model.extrudes)
    if settings.max_extrudes is not None and extrudes > settings.max_extrudes:
        raise CadError("too_many_extrudes", f"{extrudes} extrudes (limit {settings.max_extrudes})")
    if settings.max_curves is not None:
        curves = sum(len(loop.curves) for e in model.extrudes for loop in e.profile.loops)
        if curves > settings.max_curves:
            raise CadError("too_many_curves", f"{curves} curves (limit {settings.max_curves})")
