"""Chain the curves of one sketch loop head to tail.

DeepCAD stores a loop's curves each in its own direction and not always in order, so the
parser joins them by matching endpoints within a tolerance (relative to the model's size,
chosen by the caller). Points are never recomputed: a reversed curve swaps its own
endpoints, so writers can still print the file's numbers exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from stages.cad.model import Arc, CadError, Circle, Curve, Line, Vec2


def curve_length(curve: Curve) -> float:
    """Length of a curve (circumference for a circle); used to skip zero-length curves."""
    if isinstance(curve, Line):
        return math.dist(curve.start, curve.end)
    if isinstance(curve, Arc):
        return abs(curve.radius * curve.sweep)
    return 2.0 * math.pi * curve.radius


def chain_loop(curves: Sequence[Curve], tol: float) -> tuple[Curve, ...]:
    """Order and orient ``curves`` so each one ends where the next starts and the last ends
    where the first starts.

    Curves shorter than ``tol`` are dropped. The file's order is kept where it already
    chains (the lowest-index matching curve is always taken next). Raises
    ``CadError("open_loop")`` when the curves do not form exactly one closed chain and
    ``CadError("degenerate")`` when nothing of non-zero length is left.
    """
    kept = [c for c in curves if curve_length(c) > tol]
    if not kept:
        raise CadError("degenerate", "loop has no curve of non-zero length")
    if any(isinstance(c, Circle) for c in kept):
        if len(kept) == 1:
            return (kept[0],)
        raise CadError("open_loop", "a circle shares its loop with other curves")
    open_curves: list[Line | Arc] = [c for c in kept if not isinstance(c, Circle)]
    starts = np.array([c.start for c in open_curves], dtype=np.float64)
    ends = np.array([c.end for c in open_curves], dtype=np.float64)
    used = np.zeros(len(open_curves), dtype=bool)

    first = _orient_first(open_curves, tol)
    chain: list[Line | Arc] = [first]
    used[0] = True
    head = first.end
    for _ in range(len(open_curves) - 1):
        index, forward = _next_curve(starts, ends, used, head, tol)
        used[index] = True
        curve = open_curves[index] if forward else open_curves[index].reversed()
        chain.append(curve)
        head = curve.end
    if math.dist(head, chain[0].start) > tol:
        raise CadError(
            "open_loop", f"loop does not close (gap {math.dist(head, chain[0].start):.3g})"
        )
    return tuple(chain)


def _orient_first(curves: Sequence[Line | Arc], tol: float) -> Line | Arc:
    """Turn the first curve so that its end meets the second curve, as DeepCAD's own
    reordering does; a loop of one curve (a closed arc) stays as it is."""
    first = curves[0]
    if len(curves) == 1:
        return first
    second = curves[1]
    touches_end = min(math.dist(first.end, p) for p in (second.start, second.end)) <= tol
    touches_start = min(math.dist(first.start, p) for p in (second.start, second.end)) <= tol
    return first.reversed() if touches_start and not touches_end else first


def _next_curve(
    starts: np.ndarray, ends: np.ndarray, used: np.ndarray, head: Vec2, tol: float
) -> tuple[int, bool]:
    """Index of the lowest unused curve touching ``head`` and whether it runs forward."""
    point = np.asarray(head, dtype=np.float64)
    d_start = np.hypot(*(starts - point).T)
    d_end = np.hypot(*(ends - point).T)
    touching = ~used & ((d_start <= tol) | (d_end <= tol))
    candidates = np.flatnonzero(touching)
    if candidates.size == 0:
        raise CadError("open_loop", f"no curve continues the loop at {head}")
    index = int(candidates[0])
    return index, bool(d_start[index] <= tol)
