"""Part families built across several planes: brackets, channels, ribbed walls, stepped shafts,
two-view intersections and blocks with angled cuts.

Like ``parts_flat``, each returns a ``Design`` in a canonical orientation. Side profiles
are drawn on the Front plane (local (u, v) = world (x, z), extruded towards -y) and the Right
plane (local (u, v) = world (y, z), extruded towards +x).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from stages.cad.model import Arc, ExtentType, Line, Loop, Operation, Profile, SketchPlane, Vec2
from stages.cad.synth.design import Design, DesignBuilder
from stages.cad.synth.shapes import (
    Grid,
    circle,
    front_plane,
    polygon,
    rectangle,
    right_plane,
    rounded_polygon,
    slot,
    tilted_plane,
    top_plane,
)
from stages.cad.synth.spacing import Rect, Span, clearance, hole_pattern, slab_span


def _extrude_span(
    b: DesignBuilder, plane: SketchPlane, loops: tuple[Loop, ...], operation: Operation, span: Span
) -> None:
    """One feature extruding each of ``loops`` (one profile each) over ``span``."""
    sketch = b.sketch(plane, *(Profile((loop,)) for loop in loops))
    b.extrude(
        sketch,
        operation,
        span.extent_one,
        extent_type=span.extent_type,
        extent_two=span.extent_two,
    )


def _drill(
    rng: random.Random,
    grid: Grid,
    b: DesignBuilder,
    make_plane: Callable[[float], SketchPlane],
    area: Rect,
    low: float,
    high: float,
) -> None:
    """Cut a hole pattern in ``area`` (sketch coordinates) through the slab ``low..high``."""
    if area.width <= 0 or area.height <= 0:
        return
    centres, radius = hole_pattern(rng, grid, area, 0.0, clearance(grid))
    if centres:
        span = slab_span(rng, grid, low, high)
        loops = tuple(circle(c, radius) for c in centres)
        _extrude_span(b, make_plane(span.offset), loops, Operation.CUT, span)


def l_bracket(rng: random.Random, grid: Grid) -> Design:
    """An angle bracket drawn as an L side profile, with holes in both legs and maybe a rib."""
    b = DesignBuilder("l_bracket")
    gap = clearance(grid)
    run, rise = grid.pick(rng, 0.6, 1.0), grid.pick(rng, 0.4, 0.9)
    floor_t, wall_t = grid.pick(rng, 0.05, 0.14), grid.pick(rng, 0.05, 0.14)
    width = grid.pick(rng, 0.3, 0.8)
    fillet = grid.snap(rng.uniform(0.5, 1.5) * min(floor_t, wall_t)) if rng.random() < 0.4 else 0.0
    points = [
        (0.0, 0.0),
        (run, 0.0),
        (run, floor_t),
        (wall_t, floor_t),
        (wall_t, rise),
        (0.0, rise),
    ]
    outline = rounded_polygon(points, [0.0, 0.0, 0.0, fillet, 0.0, 0.0])
    body = slab_span(rng, grid, 0.0, width)
    _extrude_span(b, front_plane(body.offset), (outline,), Operation.NEW_BODY, body)
    foot, height = wall_t + fillet, floor_t + fillet
    if rng.random() < 0.4:
        reach = grid.snap(rng.uniform(0.4, 0.8) * (run - wall_t))
        climb = grid.snap(rng.uniform(0.4, 0.8) * (rise - floor_t))
        rib_t = grid.pick(rng, 0.04, 0.08)
        if width - rib_t >= 2 * gap and reach > fillet + gap and climb > fillet + gap:
            rib = _rib(rng, (wall_t, floor_t), reach, climb, (wall_t / 2, floor_t / 2))
            span = Span(width / 2, ExtentType.SYMMETRIC, rib_t / 2)
            _extrude_span(b, front_plane(span.offset), (rib,), Operation.JOIN, span)
            foot, height = wall_t + reach + gap, floor_t + climb + gap
    # Floor holes on the Top plane (x, y = -depth); wall holes on the Right plane (y, z).
    _drill(rng, grid, b, top_plane, Rect(foot, -width, run, 0.0), 0.0, floor_t)
    if rng.random() < 0.7:
        _drill(rng, grid, b, right_plane, Rect(-width, height, 0.0, rise), 0.0, wall_t)
    return b.build()


def u_channel(rng: random.Random, grid: Grid) -> Design:
    """A U channel (or clevis) with cross holes through both walls and holes in the base."""
    b = DesignBuilder("u_channel")
    gap = clearance(grid)
    span_x, rise = grid.pick(rng, 0.5, 1.0), grid.pick(rng, 0.35, 0.8)
    wall = grid.pick(rng, 0.05, 0.12)
    base = grid.pick(rng, 0.05, 0.15)
    depth = grid.pick(rng, 0.3, 1.0)
    if span_x - 2 * wall < 2 * gap or rise - base < 2 * gap:
        wall = base = grid.snap(gap)
    fillet = grid.snap(rng.uniform(0.3, 1.0) * wall) if rng.random() < 0.4 else 0.0
    points = [(0.0, 0.0), (span_x, 0.0), (span_x, rise), (span_x - wall, rise)]
    points += [(span_x - wall, base), (wall, base), (wall, rise), (0.0, rise)]
    outline = rounded_polygon(points, [0.0, 0.0, 0.0, 0.0, fillet, fillet, 0.0, 0.0])
    body = slab_span(rng, grid, 0.0, depth)
    _extrude_span(b, front_plane(body.offset), (outline,), Operation.NEW_BODY, body)
    if rng.random() < 0.8:
        _drill(rng, grid, b, right_plane, Rect(-depth, base + fillet, 0.0, rise), 0.0, span_x)
    if rng.random() < 0.5:
        _drill(
            rng,
            grid,
            b,
            top_plane,
            Rect(wall + fillet, -depth, span_x - wall - fillet, 0.0),
            0.0,
            base,
        )
    return b.build()


def ribbed_wall(rng: random.Random, grid: Grid) -> Design:
    """A base plate with an upright wall along one edge braced by triangular ribs."""
    b = DesignBuilder("ribbed_wall")
    gap = clearance(grid)
    length, depth = grid.pick(rng, 0.6, 1.0), grid.pick(rng, 0.35, 0.7)
    thick, wall_t = grid.pick(rng, 0.05, 0.12), grid.pick(rng, 0.05, 0.12)
    rise = grid.pick(rng, 0.3, 0.7)
    b.extrude(
        b.sketch(top_plane(), Profile((rectangle(0.0, 0.0, length, depth),))),
        Operation.NEW_BODY,
        thick,
    )
    wall = rectangle(0.0, thick, length, thick + rise)
    if rng.random() < 0.5:  # the wall occupies y in [0, wall_t]: world y = -offset on Front
        _extrude_span(
            b, front_plane(0.0), (wall,), Operation.JOIN, Span(0.0, ExtentType.ONE_SIDE, -wall_t)
        )
    else:
        _extrude_span(
            b,
            front_plane(-wall_t),
            (wall,),
            Operation.JOIN,
            Span(-wall_t, ExtentType.ONE_SIDE, wall_t),
        )
    count = rng.randint(1, 3)
    rib_t = grid.pick(rng, 0.03, 0.06)
    reach = grid.snap(rng.uniform(0.4, 0.8) * (depth - wall_t))
    climb = grid.snap(rng.uniform(0.5, 0.9) * rise)
    pitch = length / (count + 1)
    if pitch - rib_t < 2 * gap or reach < gap:
        count = 0
    for i in range(count):
        x = grid.snap(pitch * (i + 1))
        rib = _rib(rng, (wall_t, thick), reach, climb, (wall_t / 2, thick / 2))
        span = Span(x, ExtentType.SYMMETRIC, rib_t / 2)
        _extrude_span(b, right_plane(x), (rib,), Operation.JOIN, span)
    front = wall_t + (reach if count else 0.0) + gap
    if rng.random() < 0.7:
        _drill(rng, grid, b, top_plane, Rect(0.0, front, length, depth), 0.0, thick)
    return b.build()


def _rib(rng: random.Random, corner: Vec2, reach: float, climb: float, embed: Vec2) -> Loop:
    """A triangular rib in the corner between a floor and a wall.

    Half the time its hidden part reaches ``embed`` into the wall and floor (as many designers
    draw it); otherwise it only touches them, face to face.
    """
    x, y = corner
    if rng.random() < 0.5:
        return polygon([(x, y), (x + reach, y), (x, y + climb)])
    x0, y0 = x - embed[0], y - embed[1]
    return polygon([(x0, y0), (x + reach, y0), (x + reach, y), (x, y + climb), (x0, y + climb)])


def stepped_shaft(rng: random.Random, grid: Grid) -> Design:
    """Coaxial cylinders along x, maybe bored, cross-drilled or keyed."""
    b = DesignBuilder("stepped_shaft")
    gap = clearance(grid)
    count = rng.randint(2, 4)
    radii: list[float] = []
    while len(radii) < count:
        radius = grid.pick(rng, 0.08, 0.25)
        if not radii or abs(radius - radii[-1]) >= gap:
            radii.append(radius)
    lengths = [grid.pick(rng, 0.15, 0.45) for _ in radii]
    starts = [sum(lengths[:i]) for i in range(count)]
    for i, (start, radius, length) in enumerate(zip(starts, radii, lengths, strict=True)):
        operation = Operation.NEW_BODY if i == 0 else Operation.JOIN
        span = Span(start, ExtentType.ONE_SIDE, length)
        if rng.random() < 0.2:  # drawn from the far end of the step, extruded backwards
            span = Span(start + length, ExtentType.ONE_SIDE, -length)
        _extrude_span(b, right_plane(span.offset), (circle((0.0, 0.0), radius),), operation, span)
    total = sum(lengths)
    bore = grid.snap(rng.uniform(0.3, 0.6) * min(radii))
    drilled_step = -1
    bore_cut = rng.random() < 0.3 and min(radii) - bore >= gap
    if bore_cut:
        span = slab_span(rng, grid, 0.0, total)
        _extrude_span(b, right_plane(span.offset), (circle((0.0, 0.0), bore),), Operation.CUT, span)
    elif rng.random() < 0.5:
        step = rng.randrange(count)
        hole = grid.snap(rng.uniform(0.2, 0.4) * min(radii[step], lengths[step] / 2))
        if lengths[step] - 2 * hole >= 2 * gap and radii[step] - hole >= gap:
            drilled_step = step
            centre = (starts[step] + lengths[step] / 2, 0.0)
            half = grid.snap(max(radii) + gap)
            span = Span(0.0, ExtentType.SYMMETRIC, half)
            _extrude_span(b, front_plane(0.0), (circle(centre, hole),), Operation.CUT, span)
    if rng.random() < 0.35:
        step = max(range(count), key=lambda i: lengths[i])
        key_r = grid.snap(rng.uniform(0.15, 0.3) * radii[step])
        margin = gap + key_r
        x0, x1 = starts[step] + margin, starts[step] + lengths[step] - margin
        key_depth = grid.snap(rng.uniform(0.25, 0.45) * radii[step])
        floor = radii[step] - key_depth - (bore if drilled_step < 0 and bore_cut else 0.0)
        if x1 - x0 >= gap and floor >= gap and step != drilled_step:
            key = slot((x0, 0.0), (x1, 0.0), key_r)
            _extrude_span(
                b,
                top_plane(radii[step]),
                (key,),
                Operation.CUT,
                Span(0.0, ExtentType.ONE_SIDE, -key_depth),
            )
    return b.build()


def two_view(rng: random.Random, grid: Grid) -> Design:
    """A plan outline intersected with a side silhouette (a ramp, a step or a dome)."""
    b = DesignBuilder("two_view")
    gap = clearance(grid)
    half_w, half_d = grid.pick(rng, 0.3, 0.5), grid.pick(rng, 0.15, 0.35)
    height = grid.pick(rng, 0.25, 0.6)
    corner = grid.snap(rng.uniform(0.1, 0.4) * half_d)
    plan = rounded_polygon(
        [(-half_w, -half_d), (half_w, -half_d), (half_w, half_d), (-half_w, half_d)], [corner] * 4
    )
    side = _silhouette(rng, grid, half_w + gap, height, gap)
    plan_first = rng.random() < 0.7
    plan_span = slab_span(rng, grid, 0.0, height)
    side_span = Span(0.0, ExtentType.SYMMETRIC, grid.snap(half_d + gap))
    steps = [
        (top_plane(plan_span.offset), plan, plan_span),
        (front_plane(0.0), side, side_span),
    ]
    if not plan_first:
        steps.reverse()
    for i, (plane, loop, span) in enumerate(steps):
        _extrude_span(
            b, plane, (loop,), Operation.NEW_BODY if i == 0 else Operation.INTERSECT, span
        )
    if rng.random() < 0.4:
        hole = grid.snap(rng.uniform(0.3, 0.6) * half_d)
        if half_d - hole >= gap:
            span = slab_span(rng, grid, 0.0, height)
            _extrude_span(
                b, top_plane(span.offset), (circle((0.0, 0.0), hole),), Operation.CUT, span
            )
    return b.build()


def _silhouette(rng: random.Random, grid: Grid, half: float, height: float, gap: float) -> Loop:
    """A side outline spanning x in [-half, half], z from below 0 up to ``height``."""
    below = -gap
    kind = rng.choice(("ramp", "step", "dome"))
    low = grid.snap(rng.uniform(0.35, 0.7) * height)
    if kind == "ramp":
        return polygon([(-half, below), (half, below), (half, low), (-half, height)])
    if kind == "step":
        split = grid.snap(rng.uniform(-0.4, 0.4) * half)
        return polygon(
            [
                (-half, below),
                (half, below),
                (half, low),
                (split, low),
                (split, height),
                (-half, height),
            ]
        )
    # A dome: the arc through (+-half, low) peaking at ``height``.
    rise = height - low
    radius = (half * half + rise * rise) / (2 * rise)
    centre = (0.0, height - radius)
    sweep = (
        2 * math.asin(half / radius)
        if rise <= radius
        else 2 * math.pi - 2 * math.asin(half / radius)
    )
    start, end = (half, low), (-half, low)
    return Loop(
        (
            Line((-half, below), (half, below)),
            Line((half, below), start),
            Arc(start, end, centre, radius, sweep),
            Line(end, (-half, below)),
        )
    )


def angled_block(rng: random.Random, grid: Grid) -> Design:
    """A block with a bevelled edge and/or an inclined hole, both sketched on tilted planes."""
    b = DesignBuilder("angled_block")
    gap = clearance(grid)
    half_w, half_d = grid.pick(rng, 0.3, 0.5), grid.pick(rng, 0.2, 0.4)
    height = grid.pick(rng, 0.2, 0.5)
    b.extrude(
        b.sketch(top_plane(), Profile((rectangle(-half_w, -half_d, half_w, half_d),))),
        Operation.NEW_BODY,
        height,
    )
    bevel = rng.random() < 0.6
    if bevel:
        tilt = rng.choice((math.pi / 4, math.pi / 6, math.pi / 3))
        size = grid.snap(rng.uniform(0.2, 0.5) * min(half_w, height / math.tan(tilt)))
        if size >= gap and size * math.tan(tilt) <= height - gap:
            origin = (half_w - size, 0.0, height)
            along = size / math.cos(tilt) + gap
            cover = rectangle(-half_d - gap, -along, half_d + gap, gap)
            span = Span(0.0, ExtentType.ONE_SIDE, size * math.sin(tilt) + gap)
            _extrude_span(b, tilted_plane(origin, tilt), (cover,), Operation.CUT, span)
    if not bevel or rng.random() < 0.4:
        tilt = rng.choice((math.pi / 12, math.pi / 9, math.pi / 6))
        hole = grid.snap(rng.uniform(0.1, 0.3) * half_d)
        shift = height / 2 * math.tan(tilt) + hole / math.cos(tilt)
        centre_x = -half_w / 2 if bevel else 0.0
        room = half_w / 2 if bevel else half_w
        if room - shift >= gap and half_d - hole >= gap:
            half = height / (2 * math.cos(tilt)) + hole * math.tan(tilt) + gap
            span = Span(0.0, ExtentType.SYMMETRIC, grid.snap(half))
            plane = tilted_plane((centre_x, 0.0, height / 2), tilt)
            _extrude_span(b, plane, (circle((0.0, 0.0), hole),), Operation.CUT, span)
    return b.build()
