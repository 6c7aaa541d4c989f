"""Turn a loss history into the test-run verdict: improvement, convergence, overfitting.

Definitions (the README copies these):

- ``total_improvement``: the percent drop of the training loss from the first epoch to the
  last, ``100 * (first - last) / first``, where an epoch's training loss is the mean loss of
  its micro-batches. With a single epoch, the first and last logging steps' losses are compared
  instead. Rounded to one decimal; negative when the loss rose.
- ``convergence``:
  ``diverged`` if any training or validation loss is not finite, or the loss rose
  (improvement below 0); otherwise ``excellent`` at an improvement of at least 50 %, ``good``
  at least 20 %, else ``poor``.
- ``overfitting``: with validation losses for at least two epochs, true when the last
  epoch's validation loss is more than 5 % above the best (lowest) one while the training loss
  still fell after that best epoch: the model got better at the training set and worse at the
  held-out one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

EXCELLENT_IMPROVEMENT = 50.0
GOOD_IMPROVEMENT = 20.0
OVERFIT_TOLERANCE = 0.05


def total_improvement(
    epochs: Sequence[dict[str, Any]], step_losses: Sequence[Sequence[float]]
) -> float:
    if len(epochs) >= 2:
        first, last = epochs[0]["train_loss"], epochs[-1]["train_loss"]
    elif len(step_losses) >= 2:
        first, last = step_losses[0][1], step_losses[-1][1]
    else:
        return 0.0
    if not (_finite(first) and _finite(last)) or first == 0:
        return 0.0
    return round(100.0 * (first - last) / first, 1)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def convergence(epochs: Sequence[dict[str, Any]], improvement: float) -> str:
    losses = [e["train_loss"] for e in epochs] + [
        e["val_loss"] for e in epochs if e.get("val_loss") is not None
    ]
    if not all(_finite(v) for v in losses) or improvement < 0:
        return "diverged"
    if improvement >= EXCELLENT_IMPROVEMENT:
        return "excellent"
    if improvement >= GOOD_IMPROVEMENT:
        return "good"
    return "poor"


def overfitting(epochs: Sequence[dict[str, Any]]) -> bool:
    scored = [e for e in epochs if _finite(e.get("val_loss"))]
    if len(scored) < 2:
        return False
    best = min(range(len(scored)), key=lambda i: scored[i]["val_loss"])
    last = scored[-1]
    val_rose = last["val_loss"] > scored[best]["val_loss"] * (1 + OVERFIT_TOLERANCE)
    train_fell = last["train_loss"] < scored[best]["train_loss"]
    return bool(val_rose and train_fell)


def summarize(
    epochs: Sequence[dict[str, Any]], step_losses: Sequence[Sequence[float]]
) -> dict[str, Any]:
    """The verdict part of the results, from the per-epoch metric events themselves."""
    improvement = total_improvement(epochs, step_losses)
    val_losses = [e["val_loss"] for e in epochs if _finite(e.get("val_loss"))]
    return {
        "epochs": len(epochs),
        "loss_progression": [
            {"epoch": e["epoch"], "train_loss": e["train_loss"], "val_loss": e.get("val_loss")}
            for e in epochs
        ],
        "total_improvement": improvement,
        "convergence": convergence(epochs, improvement),
        "overfitting": overfitting(epochs),
        "final_train_loss": epochs[-1]["train_loss"] if epochs else None,
        "final_val_loss": epochs[-1].get("val_loss") if epochs else None,
        "best_val_loss": min(val_losses) if val_losses else None,
    }
