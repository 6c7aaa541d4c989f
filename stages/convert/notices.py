"""Warnings about skipped models and images, capped so a badly broken dataset does not flood
the job's event log: the first few per reason are reported one by one, the rest as a count."""

from __future__ import annotations

from collections import Counter

from stages.protocol import Reporter

DETAILED_PER_REASON = 50


class CappedWarnings:
    """Counts every warning per reason; emits the first ``limit`` of each reason in full."""

    def __init__(self, reporter: Reporter, limit: int = DETAILED_PER_REASON) -> None:
        self.reporter = reporter
        self.limit = limit
        self.counts: Counter[str] = Counter()

    def warn(self, item: str, message: str, reason: str) -> None:
        self.counts[reason] += 1
        if self.counts[reason] <= self.limit:
            self.reporter.warning(item, message, reason=reason)

    def flush(self) -> None:
        """One summary warning per reason whose individual warnings were cut short."""
        for reason, count in sorted(self.counts.items()):
            if count > self.limit:
                hidden = count - self.limit
                self.reporter.warning("*", f"{hidden} more warnings like this: {reason}")
