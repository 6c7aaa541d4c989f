"""Part families drawn on one main plane: plates, slotted plates, links, flanges, bosses, rings.

Each family takes a random source and a dimension grid and returns a ``Design`` in a canonical
orientation (the main face on the Top plane); ``quirks`` later turns and re-expresses it.
"""

from __future__ import annotations

import math
import random

from stages.cad.model import ExtentType, Loop, Operation, Profile, Vec2
from stages.cad.synth.design import Design, DesignBuilder
from stages.cad.synth.shapes import (
    Grid,
    circle,
    polygon,
    rectangle,
    ring_points,
    rounded_rectangle,
    slot,
    top_plane,
    turned_top_plane,
)
from stages.cad.synth.spacing import Rect, circles_clear, clearance, hole_pattern, slab_span


def _outline(rng: random.Random, grid: Grid, area: Rect) -> tuple[Loop, float]:
    """A plate outline (sharp, rounded or chamfered corners) and how far its corners reach in."""
    style = rng.choice(("sharp", "round", "round", "chamfer"))
    short = min(area.width, area.height)
    if style == "sharp":
        return rectangle(area.x0, area.y0, area.x1, area.y1), 0.0
    size = grid.snap(rng.uniform(0.1, 0.3) * short)
    if style == "round":
        return rounded_rectangle(area.x0, area.y0, area.x1, area.y1, size), size
    x0, y0, x1, y1 = area.x0, area.y0, area.x1, area.y1
    points = [(x0 + size, y0), (x1 - size, y0), (x1, y0 + size), (x1, y1 - size)]
    points += [(x1 - size, y1), (x0 + size, y1), (x0, y1 - size), (x0, y0 + size)]
    return polygon(points), size


def _plate_area(rng: random.Random, grid: Grid, width: float, height: float) -> Rect:
    """A plate rectangle, centred on the origin or with a corner there (both are common)."""
    if rng.random() < 0.5:
        half_w, half_h = grid.snap(width / 2), grid.snap(height / 2)
        return Rect(-half_w, -half_h, half_w, half_h)
    return Rect(0.0, 0.0, width, height)


def _holes(centres: list[Vec2], radius: float) -> tuple[Loop, ...]:
    return tuple(circle(c, radius) for c in centres)


def _base(
    rng: random.Random, b: DesignBuilder, profile: Profile, thick: float
) -> tuple[float, float]:
    """Extrude the base plate, mostly up from the Top plane, sometimes centred on it."""
    if rng.random() < 0.8:
        b.extrude(b.sketch(top_plane(), profile), Operation.NEW_BODY, thick)
        return 0.0, thick
    sketch = b.sketch(top_plane(), profile)
    b.extrude(sketch, Operation.NEW_BODY, thick / 2, extent_type=ExtentType.SYMMETRIC)
    return -thick / 2, thick / 2


def _cut_through(
    rng: random.Random,
    grid: Grid,
    b: DesignBuilder,
    loops: tuple[Loop, ...],
    low: float,
    high: float,
) -> None:
    """Cut ``loops`` (one profile each) through the slab ``low..high`` as one feature."""
    span = slab_span(rng, grid, low, high)
    sketch = b.sketch(top_plane(span.offset), *(Profile((loop,)) for loop in loops))
    b.extrude(
        sketch,
        Operation.CUT,
        span.extent_one,
        extent_type=span.extent_type,
        extent_two=span.extent_two,
    )


def plate(rng: random.Random, grid: Grid) -> Design:
    """A plate with a hole pattern, maybe counterbores or a pocket."""
    b = DesignBuilder("plate")
    gap = clearance(grid)
    area = _plate_area(rng, grid, grid.pick(rng, 0.6, 1.0), grid.pick(rng, 0.35, 1.0))
    thick = grid.pick(rng, 0.04, 0.16)
    outline, reach = _outline(rng, grid, area)
    centres, radius = hole_pattern(rng, grid, area, reach, gap)
    holes = _holes(centres, radius)
    inner_holes = bool(holes) and rng.random() < 0.5
    low, high = _base(
        rng, b, Profile((outline, *holes)) if inner_holes else Profile((outline,)), thick
    )
    if holes and not inner_holes:
        _cut_through(rng, grid, b, holes, low, high)
    depth = grid.snap(rng.uniform(0.3, 0.6) * thick)
    if holes and rng.random() < 0.35 and thick - depth >= gap:
        bore = grid.snap(radius + rng.uniform(0.3, 0.7) * radius)
        if bore > radius and circles_clear(centres, bore, area, gap, reach):
            sketch = b.sketch(top_plane(high), *(Profile((h,)) for h in _holes(centres, bore)))
            b.extrude(sketch, Operation.CUT, -depth)
    elif rng.random() < 0.3 and thick - depth >= gap:
        _pocket(rng, grid, b, area, centres, radius, reach, gap, high, depth)
    return b.build()


def _pocket(
    rng: random.Random,
    grid: Grid,
    b: DesignBuilder,
    area: Rect,
    centres: list[Vec2],
    radius: float,
    reach: float,
    gap: float,
    top: float,
    depth: float,
) -> None:
    """A rounded rectangular pocket in the top face, clear of the holes and the edges."""
    margin = max(reach, gap) + gap
    pocket = area.inset(margin)
    if centres:
        xs = [c[0] for c in centres]
        ys = [c[1] for c in centres]
        keep = radius + gap
        pocket = Rect(
            max(pocket.x0, min(xs) + keep),
            max(pocket.y0, min(ys) + keep),
            min(pocket.x1, max(xs) - keep),
            min(pocket.y1, max(ys) - keep),
        )
        if any(
            pocket.x0 - keep < x < pocket.x1 + keep and pocket.y0 - keep < y < pocket.y1 + keep
            for x, y in centres
        ):
            return
    if pocket.width < 2 * gap or pocket.height < 2 * gap:
        return
    corner = grid.snap(rng.uniform(0.1, 0.3) * min(pocket.width, pocket.height))
    loop = rounded_rectangle(pocket.x0, pocket.y0, pocket.x1, pocket.y1, corner)
    b.extrude(b.sketch(top_plane(top), Profile((loop,))), Operation.CUT, -depth)


def slotted_plate(rng: random.Random, grid: Grid) -> Design:
    """A plate with parallel rounded slots cut through it."""
    b = DesignBuilder("slotted_plate")
    gap = clearance(grid)
    area = _plate_area(rng, grid, grid.pick(rng, 0.6, 1.0), grid.pick(rng, 0.4, 0.8))
    thick = grid.pick(rng, 0.04, 0.14)
    outline, reach = _outline(rng, grid, area)
    count = rng.randint(1, 3)
    width = grid.snap(rng.uniform(0.1, 0.2) * area.height)
    radius = width / 2
    inner = area.inset(max(reach, gap) + radius)
    length_room = inner.width - 2 * grid.quantum
    if length_room <= 0 or inner.height <= 0:
        return _plain(b, outline, thick)
    pitch = inner.height / max(count - 1, 1)
    if count > 1 and pitch < width + gap:
        count = 1
    length = grid.snap(rng.uniform(0.3, 0.9) * length_room)
    x0 = area.center[0] - length / 2
    ys = [area.center[1]] if count == 1 else [inner.y0 + i * pitch for i in range(count)]
    slots = tuple(slot((x0, y), (x0 + length, y), radius) for y in ys)
    if rng.random() < 0.5:
        b.extrude(b.sketch(top_plane(), Profile((outline, *slots))), Operation.NEW_BODY, thick)
    else:
        low, high = _base(rng, b, Profile((outline,)), thick)
        _cut_through(rng, grid, b, slots, low, high)
    return b.build()


def _plain(b: DesignBuilder, outline: Loop, thick: float) -> Design:
    b.extrude(b.sketch(top_plane(), Profile((outline,))), Operation.NEW_BODY, thick)
    return b.build()


def link(rng: random.Random, grid: Grid) -> Design:
    """A rounded link bar with a hole at each end, maybe a raised boss at one end."""
    b = DesignBuilder("link")
    gap = clearance(grid)
    length = grid.pick(rng, 0.5, 0.85)
    radius = grid.pick(rng, 0.1, 0.2)
    hole = grid.snap(rng.uniform(0.3, 0.6) * radius)
    thick = grid.pick(rng, 0.05, 0.15)
    ends = ((0.0, 0.0), (length, 0.0))
    body = slot(ends[0], ends[1], radius)
    loops = [body]
    if radius - hole >= gap:
        loops += [circle(ends[0], hole), circle(ends[1], hole)]
    b.extrude(b.sketch(top_plane(), Profile(tuple(loops))), Operation.NEW_BODY, thick)
    if len(loops) == 3 and rng.random() < 0.5:
        height = grid.pick(rng, 0.05, 0.2)
        ring = Profile((circle(ends[1], radius), circle(ends[1], hole)))
        b.extrude(b.sketch(top_plane(thick), ring), Operation.JOIN, height)
    return b.build()


def flange(rng: random.Random, grid: Grid) -> Design:
    """A round or square flange with a bore, a bolt circle and often a hub."""
    b = DesignBuilder("flange")
    gap = clearance(grid)
    outer = grid.pick(rng, 0.4, 0.5)
    thick = grid.pick(rng, 0.05, 0.15)
    bore = grid.pick(rng, 0.08, 0.16)
    hub = grid.snap(bore + max(gap, rng.uniform(0.08, 0.16) * grid.size))
    bolt = grid.pick(rng, 0.025, 0.05)
    pitch = grid.snap((hub + outer) / 2 + rng.uniform(-0.03, 0.03) * grid.size)
    count = rng.randint(3, 8)
    square = rng.random() < 0.3
    centres = ring_points((0.0, 0.0), pitch, count, math.pi / 4 if square else 0.0)
    fits = pitch - bolt - gap >= hub and pitch + bolt + gap <= outer
    fits = fits and 2 * pitch * math.sin(math.pi / count) >= 2 * bolt + gap
    if square:
        body = rounded_rectangle(-outer, -outer, outer, outer, grid.snap(0.25 * outer))
    else:
        body = circle((0.0, 0.0), outer)
    holes = _holes(centres, bolt) if fits else ()
    with_hub = rng.random() < 0.7
    bore_loop = circle((0.0, 0.0), bore)
    b.extrude(b.sketch(top_plane(), Profile((body, bore_loop, *holes))), Operation.NEW_BODY, thick)
    if with_hub:
        height = grid.pick(rng, 0.1, 0.3)
        ring = Profile((circle((0.0, 0.0), hub),))
        if rng.random() < 0.5:
            ring = Profile((bore_loop, circle((0.0, 0.0), hub)))
            b.extrude(b.sketch(top_plane(thick), ring), Operation.JOIN, height)
        else:
            b.extrude(b.sketch(top_plane(thick), ring), Operation.JOIN, height)
            _cut_through(rng, grid, b, (bore_loop,), 0.0, thick + height)
    return b.build()


def boss_plate(rng: random.Random, grid: Grid) -> Design:
    """A block with round or square bosses on top (one multi-profile join), each drilled."""
    b = DesignBuilder("boss_plate")
    gap = clearance(grid)
    area = _plate_area(rng, grid, grid.pick(rng, 0.6, 1.0), grid.pick(rng, 0.35, 0.8))
    thick = grid.pick(rng, 0.06, 0.2)
    outline, reach = _outline(rng, grid, area)
    low, high = _base(rng, b, Profile((outline,)), thick)
    count = rng.choice((1, 1, 2, 2, 3, 4))
    short = min(area.width, area.height)
    radius = grid.snap(rng.uniform(0.12, 0.3) * short / max(1, count // 2))
    inner = area.inset(max(reach, gap) + radius + gap)
    if count == 1:
        centres = [area.center]
    elif count in (2, 3):
        centres = [(inner.x0 + i * inner.width / (count - 1), area.center[1]) for i in range(count)]
    else:
        centres = [
            (inner.x0, inner.y0),
            (inner.x1, inner.y0),
            (inner.x1, inner.y1),
            (inner.x0, inner.y1),
        ]
    if not circles_clear(centres, radius, area, gap, reach):
        centres, count = [area.center], 1
        radius = grid.snap(min(radius, 0.3 * short))
    height = grid.pick(rng, 0.08, 0.3)
    square = count == 1 and rng.random() < 0.3
    if square:
        bosses = (
            rectangle(*(c - radius for c in area.center), *(c + radius for c in area.center)),
        )
    else:
        bosses = _holes(centres, radius)
    sketch = b.sketch(top_plane(high), *(Profile((loop,)) for loop in bosses))
    b.extrude(sketch, Operation.JOIN, height)
    hole = grid.snap(rng.uniform(0.3, 0.6) * radius)
    if radius - hole >= gap and rng.random() < 0.8:
        top = high + height
        if rng.random() < 0.5:
            _cut_through(rng, grid, b, _holes(centres, hole), low, top)
        else:
            depth = grid.snap(rng.uniform(0.4, 0.8) * height)
            sketch = b.sketch(top_plane(top), *(Profile((h,)) for h in _holes(centres, hole)))
            b.extrude(sketch, Operation.CUT, -depth)
    return b.build()


def turned_boss(rng: random.Random, grid: Grid) -> Design:
    """A round plate with a rectangular or slotted block on top, turned on a rotated plane."""
    b = DesignBuilder("turned_boss")
    gap = clearance(grid)
    outer = grid.pick(rng, 0.4, 0.5)
    thick = grid.pick(rng, 0.05, 0.15)
    b.extrude(
        b.sketch(top_plane(), Profile((circle((0.0, 0.0), outer),))), Operation.NEW_BODY, thick
    )
    half_long = grid.snap(rng.uniform(0.5, 0.68) * outer)
    half_short = grid.snap(rng.uniform(0.15, 0.3) * outer)
    if math.hypot(half_long, half_short) > outer - gap:
        half_long = grid.snap(
            math.sqrt(max((outer - gap) ** 2 - half_short**2, 0.0)) - grid.quantum
        )
    angle = rng.choice((math.pi / 6, math.pi / 4, math.pi / 3, rng.uniform(0.2, 1.3)))
    if rng.random() < 0.5:
        block = rectangle(-half_long, -half_short, half_long, half_short)
    else:
        block = slot((-half_long + half_short, 0.0), (half_long - half_short, 0.0), half_short)
    height = grid.pick(rng, 0.1, 0.3)
    b.extrude(b.sketch(turned_top_plane(thick, angle), Profile((block,))), Operation.JOIN, height)
    return b.build()


def ring(rng: random.Random, grid: Grid) -> Design:
    """A washer, spacer or tube: an annulus extruded, sometimes with a notch or a polygon body."""
    b = DesignBuilder("ring")
    gap = clearance(grid)
    outer = grid.pick(rng, 0.3, 0.5)
    inner = grid.snap(rng.uniform(0.3, 0.8) * outer)
    if outer - inner < gap:
        inner = grid.snap(outer - gap - grid.quantum)
    height = grid.pick(rng, 0.05, 1.0)
    if rng.random() < 0.25:
        sides = rng.choice((6, 8))
        body = polygon(ring_points((0.0, 0.0), outer, sides, 0.0))
        inner = min(inner, grid.snap(outer * math.cos(math.pi / sides) - gap))
    else:
        body = circle((0.0, 0.0), outer)
    loops = (body, circle((0.0, 0.0), inner))
    if rng.random() < 0.4:
        loops = loops[::-1]
    span = slab_span(rng, grid, 0.0, height)
    b.extrude(
        b.sketch(top_plane(span.offset), Profile(loops)),
        Operation.NEW_BODY,
        span.extent_one,
        extent_type=span.extent_type,
        extent_two=span.extent_two,
    )
    if rng.random() < 0.3 and height > 3 * gap and inner > 2 * gap:
        notch = grid.snap(rng.uniform(0.15, 0.3) * outer)
        depth = grid.snap(rng.uniform(0.2, 0.5) * height)
        notch = min(notch, grid.snap(inner - gap))
        cut = rectangle(-notch, 0.0, notch, grid.snap(outer * 1.2))
        b.extrude(b.sketch(top_plane(height), Profile((cut,))), Operation.CUT, -depth)
    return b.build()
