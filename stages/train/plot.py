"""The loss curve as a PNG, drawn with Pillow (no plotting library is installed).

Training loss per logging step (blue line) and validation loss per epoch (orange line with
dots), against the optimizer step, with labelled axes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 800, 480
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 70, 20, 40, 50
TRAIN_COLOUR, VAL_COLOUR, AXIS_COLOUR, GRID_COLOUR = "#1f77b4", "#ff7f0e", "#333333", "#e5e5e5"
TICKS = 5


def _finite_points(points: Sequence[tuple[float, Any]]) -> list[tuple[float, float]]:
    return [(x, float(y)) for x, y in points if isinstance(y, int | float) and math.isfinite(y)]


def draw_loss_curve(
    step_losses: Sequence[Sequence[float]], epochs: Sequence[dict[str, Any]], path: Path
) -> Path:
    train = _finite_points([(s, loss) for s, loss in step_losses])
    val = _finite_points([(e["step"], e.get("val_loss")) for e in epochs])
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    draw.text(
        (MARGIN_LEFT, 12),
        "loss (blue: train per log step, orange: val per epoch)",
        fill=AXIS_COLOUR,
        font=font,
    )
    points = train + val
    if points:
        x_max = max(max(x for x, _ in points), 1)
        y_low, y_high = min(y for _, y in points), max(y for _, y in points)
        if y_high - y_low < 1e-9:
            y_low, y_high = y_low - 0.5, y_high + 0.5
        plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
        plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM

        def to_px(x: float, y: float) -> tuple[float, float]:
            return (
                MARGIN_LEFT + plot_w * x / x_max,
                MARGIN_TOP + plot_h * (1 - (y - y_low) / (y_high - y_low)),
            )

        for i in range(TICKS + 1):
            y_value = y_low + (y_high - y_low) * i / TICKS
            _, py = to_px(0, y_value)
            draw.line([(MARGIN_LEFT, py), (WIDTH - MARGIN_RIGHT, py)], fill=GRID_COLOUR)
            draw.text((8, py - 6), f"{y_value:.3g}", fill=AXIS_COLOUR, font=font)
            x_value = x_max * i / TICKS
            px, _ = to_px(x_value, y_low)
            draw.text(
                (px - 10, HEIGHT - MARGIN_BOTTOM + 8), f"{x_value:.0f}", fill=AXIS_COLOUR, font=font
            )
        if len(train) >= 2:
            draw.line([to_px(x, y) for x, y in train], fill=TRAIN_COLOUR, width=2)
        if len(val) >= 2:
            draw.line([to_px(x, y) for x, y in val], fill=VAL_COLOUR, width=2)
        for x, y in val:
            px, py = to_px(x, y)
            draw.ellipse([px - 4, py - 4, px + 4, py + 4], fill=VAL_COLOUR)
    draw.line(
        [
            (MARGIN_LEFT, MARGIN_TOP),
            (MARGIN_LEFT, HEIGHT - MARGIN_BOTTOM),
            (WIDTH - MARGIN_RIGHT, HEIGHT - MARGIN_BOTTOM),
        ],
        fill=AXIS_COLOUR,
        width=1,
    )
    draw.text((WIDTH // 2 - 40, HEIGHT - 22), "optimizer step", fill=AXIS_COLOUR, font=font)
    tmp = path.with_name(path.name + ".tmp")
    image.save(tmp, format="PNG")
    tmp.replace(path)
    return path
