"""The validation result: flags, stats, warnings and a capped problem list.

Problems can number in the tens of thousands on a broken dataset; the result keeps a fair
share of each kind (so one flood does not hide a rarer problem) and the full counts.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from stages.validate.checks import SUMMARIES, Problem

MAX_PROBLEMS = 200


def nearest_rank(sorted_values: Sequence[int], percent: float) -> int:
    """The nearest-rank percentile of already sorted values (0 for none)."""
    if not sorted_values:
        return 0
    rank = max(1, math.ceil(percent / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def token_percentiles(lengths: Sequence[int]) -> dict[str, int]:
    ordered = sorted(lengths)
    return {
        "p50": nearest_rank(ordered, 50),
        "p90": nearest_rank(ordered, 90),
        "p99": nearest_rank(ordered, 99),
        "max": ordered[-1] if ordered else 0,
    }


def cap_problems(problems: Sequence[Problem], limit: int = MAX_PROBLEMS) -> list[Problem]:
    """At most ``limit`` problems, every check represented: the first few of each kind, in
    the order found, then more of any kind while room is left."""
    by_check: dict[str, list[Problem]] = {}
    for problem in problems:
        by_check.setdefault(problem.check, []).append(problem)
    if len(problems) <= limit:
        return list(problems)
    share = max(1, limit // len(by_check))
    kept = [p for group in by_check.values() for p in group[:share]]
    for group in by_check.values():
        room = limit - len(kept)
        if room <= 0:
            break
        kept.extend(group[share : share + room])
    return kept[:limit]


def summary_warnings(counts: Counter[str]) -> list[str]:
    """One sentence per kind of problem found, largest first."""
    return [f"{count} {SUMMARIES[check]}" for check, count in counts.most_common()]
