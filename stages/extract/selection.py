"""Fill each split to its exact size with models that build, replacing the ones that do not.

Candidates are tried in the source's (seeded) order and results are read in that order, so
the chosen models are the first usable ones of each split whatever the number of workers.
Train is filled first; a validation model whose geometric key is already in train is dropped
and replaced, so the same part never sits on both sides. With ``unique_keys`` a key is kept
only once overall.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from stages.extract.check import CheckResult
from stages.extract.sampling import TRAIN, VALIDATION
from stages.extract.sources import Candidate, Source
from stages.protocol import Reporter, UsageError
from stages.workpool import Batch, OrderedPool

DUPLICATE_REASON = "duplicate_key"
AcceptModel = Callable[[str, Candidate], None]


@dataclass
class Selection:
    """The chosen ids per split and what it took to find them. ``skipped`` counts every
    model left out by reason (duplicates under ``duplicate_key``, also in
    ``duplicates_dropped``); ``replaced`` counts chosen models that stand in for one of them.
    ``checks`` holds each chosen model's check result (its key, volume and solids)."""

    train: list[str] = field(default_factory=list)
    validation: list[str] = field(default_factory=list)
    checks: dict[str, CheckResult] = field(default_factory=dict)
    checked: int = 0
    replaced: int = 0
    duplicates_dropped: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


class SplitFiller:
    """Reads check results, decides each model, and asks for replacements while short."""

    def __init__(
        self,
        pool: OrderedPool[Candidate, CheckResult],
        reporter: Reporter,
        accept: AcceptModel,
        *,
        unique_keys: bool,
    ) -> None:
        self.pool = pool
        self.reporter = reporter
        self.accept = accept
        self.unique_keys = unique_keys
        self.selection = Selection()

    def run(self, source: Source, train_size: int, val_size: int) -> Selection:
        train_candidates = source.candidates(TRAIN)
        val_candidates = source.candidates(VALIDATION)
        # Both first samples go in at once, so workers never wait between the splits.
        train_batch = self.pool.submit(islice(train_candidates, train_size))
        val_batch = self.pool.submit(islice(val_candidates, val_size))
        train_keys: set[str] = set()
        self.selection.train = self._fill(
            TRAIN, train_size, train_candidates, train_batch, train_keys, set()
        )
        self.selection.validation = self._fill(
            VALIDATION, val_size, val_candidates, val_batch, set(), train_keys
        )
        return self.selection

    def _fill(
        self,
        split: str,
        size: int,
        candidates: Iterator[Candidate],
        batch: Batch[Candidate, CheckResult],
        own_keys: set[str],
        other_keys: set[str],
    ) -> list[str]:
        chosen: list[str] = []
        tried = 0
        while True:
            read = 0
            for candidate, result in batch:
                read += 1
                tried += 1
                self.selection.checked += 1
                if self._decide(split, candidate, result, own_keys, other_keys):
                    chosen.append(candidate.model_id)
                    if tried > size:
                        self.selection.replaced += 1
                    self._show_counts()
                    self.reporter.advance(ok=True)
                    if len(chosen) == size:
                        batch.cancel()
                        return chosen
                else:
                    self._show_counts()
                    self.reporter.progress()
            if read == 0:
                raise UsageError(self._ran_out(split, size, len(chosen), tried))
            batch = self.pool.submit(islice(candidates, self._next_batch_size(size, chosen, tried)))

    def _decide(
        self,
        split: str,
        candidate: Candidate,
        result: CheckResult,
        own_keys: set[str],
        other_keys: set[str],
    ) -> bool:
        if not result.ok:
            self._skip(candidate, str(result.reason), f"{split}: {result.reason}: {result.detail}")
            return False
        key = str(result.key)
        if key in other_keys:
            self._skip(candidate, DUPLICATE_REASON, f"{split}: same geometry as a train model")
            return False
        if self.unique_keys and key in own_keys:
            self._skip(candidate, DUPLICATE_REASON, f"{split}: same geometry as a {split} model")
            return False
        own_keys.add(key)
        self.accept(split, candidate)
        self.selection.checks[candidate.model_id] = result
        return True

    def _skip(self, candidate: Candidate, reason: str, message: str) -> None:
        self.selection.skipped[reason] += 1
        if reason == DUPLICATE_REASON:
            self.selection.duplicates_dropped += 1
        self.reporter.warning(candidate.model_id, message, reason=reason)

    def _show_counts(self) -> None:
        """Progress events carry how many models were checked and replaced so far."""
        self.reporter.extra["checked"] = self.selection.checked
        self.reporter.extra["replaced"] = self.selection.replaced

    def _next_batch_size(self, size: int, chosen: list[str], tried: int) -> int:
        """Enough candidates to cover the shortfall at the failure rate seen so far."""
        missing = size - len(chosen)
        failed = tried - len(chosen)
        expected_failures = math.ceil(missing * failed / max(len(chosen), 1))
        return missing + min(expected_failures, 4 * missing + self.pool.workers)

    def _ran_out(self, split: str, size: int, found: int, tried: int) -> str:
        reasons = ", ".join(f"{n} {r}" for r, n in self.selection.skipped.most_common())
        return (
            f"the {split} split ran out of usable models: {found} of {size} found after "
            f"checking {tried} (skipped: {reasons or 'none'})"
        )
