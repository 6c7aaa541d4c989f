"""Layout rules shared by the part families: how a feature spans a slab, where holes go.

Everything here keeps a clearance (``gap``) between features and to edges, so a generated part
has no sliver walls; the quality gates check the result again after building.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from stages.cad.model import ExtentType, Vec2
from stages.cad.synth.shapes import Grid, ring_points


@dataclass(frozen=True, slots=True)
class Span:
    """Where to put a sketch plane (along its normal) and how to extrude it to fill a slab."""

    offset: float
    extent_type: ExtentType
    extent_one: float
    extent_two: float = 0.0


def slab_span(rng: random.Random, grid: Grid, low: float, high: float) -> Span:
    """A sketch offset and extent that together cover ``low..high`` along the plane normal.

    Any of DeepCAD's three extent types, with the sketch on either face or inside the slab;
    from the upper face the extent is negative, as designers often draw it.
    """
    depth = high - low
    choice = rng.random()
    if choice < 0.35:
        return Span(low, ExtentType.ONE_SIDE, depth)
    if choice < 0.6:
        return Span(high, ExtentType.ONE_SIDE, -depth)
    if choice < 0.8 or depth < 4 * grid.quantum:
        half = depth / 2.0
        return Span(low + half, ExtentType.SYMMETRIC, half if rng.random() < 0.8 else -half)
    inside = grid.snap(rng.uniform(0.25, 0.75) * depth)
    inside = min(max(inside, grid.quantum), depth - grid.quantum)
    return Span(low + inside, ExtentType.TWO_SIDES, depth - inside, inside)


def clearance(grid: Grid) -> float:
    """The smallest wall or gap a family leaves between features (a few percent of the part)."""
    return grid.snap(0.045 * grid.size, minimum_steps=2)


@dataclass(frozen=True, slots=True)
class Rect:
    """An axis-aligned rectangle in sketch coordinates."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def center(self) -> Vec2:
        return ((self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0)

    def inset(self, margin: float) -> Rect:
        return Rect(self.x0 + margin, self.y0 + margin, self.x1 - margin, self.y1 - margin)


def circles_clear(
    centres: list[Vec2], radius: float, inside: Rect, gap: float, corner_reach: float = 0.0
) -> bool:
    """True when every circle lies ``gap`` inside ``inside`` and ``gap`` from every other.

    Centres must also stay ``corner_reach`` from both edges at a corner, where a rounded or
    chamfered corner would otherwise come closer than the straight edges.
    """
    slack = 1e-9 * max(inside.width, inside.height)
    for x, y in centres:
        edge = min(x - inside.x0, inside.x1 - x, y - inside.y0, inside.y1 - y)
        if edge < radius + gap - slack:
            return False
        if min(x - inside.x0, inside.x1 - x) < corner_reach - slack and (
            min(y - inside.y0, inside.y1 - y) < corner_reach - slack
        ):
            return False
    for i, a in enumerate(centres):
        for b in centres[i + 1 :]:
            if math.dist(a, b) < 2 * radius + gap:
                return False
    return True


def hole_pattern(
    rng: random.Random, grid: Grid, area: Rect, corner_reach: float, gap: float
) -> tuple[list[Vec2], float]:
    """Hole centres and radius for a plate ``area``; ``corner_reach`` keeps clear of corners.

    Patterns: four corners, a grid, a row, a bolt circle or one centre hole. Returns no holes
    when the drawn pattern does not fit with clearance ``gap``.
    """
    short = min(area.width, area.height)
    radius = grid.snap(rng.uniform(0.04, 0.11) * short)
    margin = _snap_up(grid, max(radius + gap, corner_reach))
    inner = area.inset(margin)
    kind = rng.choice(("corners", "corners", "grid", "row", "bolt", "centre"))
    centres: list[Vec2]
    if kind == "corners":
        centres = [(inner.x0, inner.y0), (inner.x1, inner.y0), (inner.x1, inner.y1)]
        centres.append((inner.x0, inner.y1))
        if rng.random() < 0.3:
            centres = centres[:2] if area.width > area.height else [centres[0], centres[3]]
    elif kind == "grid":
        columns, rows = rng.randint(2, 4), rng.randint(2, 3)
        centres = [
            (
                _lerp(inner.x0, inner.x1, i / (columns - 1)),
                _lerp(inner.y0, inner.y1, j / (rows - 1)),
            )
            for j in range(rows)
            for i in range(columns)
        ][:8]
    elif kind == "row":
        count = rng.randint(2, 5)
        cx, cy = area.center
        if area.width >= area.height:
            centres = [(_lerp(inner.x0, inner.x1, i / (count - 1)), cy) for i in range(count)]
        else:
            centres = [(cx, _lerp(inner.y0, inner.y1, i / (count - 1))) for i in range(count)]
    elif kind == "bolt":
        count = rng.randint(3, 8)
        pitch = grid.snap(rng.uniform(0.22, 0.32) * short)
        phase = rng.choice((0.0, math.pi / count, math.pi / 4))
        centres = ring_points(area.center, pitch, count, phase)
    else:
        radius = grid.snap(rng.uniform(0.12, 0.3) * short)
        centres = [area.center]
    if not inner.width > 0 or not inner.height > 0:
        return [], radius
    if not circles_clear(centres, radius, area, gap, corner_reach):
        return [], radius
    return centres, radius


def _snap_up(grid: Grid, metres: float) -> float:
    """The smallest grid value not below ``metres``."""
    return math.ceil(metres / grid.quantum - 1e-9) * grid.quantum


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t
