"""What the synthetic generator may draw: part families, sizes, units, quirks and budgets.

``Variety`` is the one knob set; ``DEFAULT_VARIETY`` mixes every family at rates that resemble
DeepCAD (mostly one to six extrudes, answers under about 2,000 characters of OpenECAD code).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from stages.cad.synth.design import Design
from stages.cad.synth.parts_flat import (
    boss_plate,
    flange,
    link,
    plate,
    ring,
    slotted_plate,
    turned_boss,
)
from stages.cad.synth.parts_solid import (
    angled_block,
    l_bracket,
    ribbed_wall,
    stepped_shaft,
    two_view,
    u_channel,
)
from stages.cad.synth.shapes import Grid

Family = Callable[[random.Random, Grid], Design]

FAMILIES: Mapping[str, Family] = MappingProxyType(
    {
        "plate": plate,
        "slotted_plate": slotted_plate,
        "link": link,
        "flange": flange,
        "boss_plate": boss_plate,
        "turned_boss": turned_boss,
        "ring": ring,
        "l_bracket": l_bracket,
        "u_channel": u_channel,
        "ribbed_wall": ribbed_wall,
        "stepped_shaft": stepped_shaft,
        "two_view": two_view,
        "angled_block": angled_block,
    }
)

DEFAULT_FAMILY_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        "plate": 3.0,
        "slotted_plate": 1.2,
        "link": 1.0,
        "flange": 2.0,
        "boss_plate": 2.0,
        "turned_boss": 0.7,
        "ring": 1.0,
        "l_bracket": 2.0,
        "u_channel": 1.5,
        "ribbed_wall": 1.0,
        "stepped_shaft": 1.5,
        "two_view": 1.2,
        "angled_block": 1.0,
    }
)

# Probabilities of each re-expression (per sketch or per part) and file quirk (per item).
DEFAULT_QUIRKS: Mapping[str, float] = MappingProxyType(
    {
        "reorient": 0.5,  # the whole part turned onto other axes
        "flip_plane": 0.2,  # sketch plane flipped: negative extents, swapped two-sided extents
        "spin_plane": 0.1,  # sketch frame turned in its plane
        "shift_origin": 0.3,  # sketch origin moved within its plane
        "shuffle_curves": 0.5,  # loop curves rotated or unordered
        "reverse_lines": 0.3,  # a line stored end to start
        "arc_end_start": 0.35,  # an arc's counter-clockwise start stored as end_point
        "outer_not_first": 0.3,  # a profile's outer loop listed after its holes
        "flip_curve_normal": 0.1,  # a curve's (ignored) normal pointing the other way
        "unused_sketch": 0.12,  # a sketch no extrude uses
        "first_join": 0.03,  # the first extrude stored as a Join
    }
)


@dataclass(frozen=True)
class Variety:
    """The generator's settings; every field has a DeepCAD-like default."""

    families: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_FAMILY_WEIGHTS))
    size_range: tuple[float, float] = (0.008, 0.4)  # characteristic part size, metres
    inch_share: float = 0.4  # share of parts drawn in inches
    quirks: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_QUIRKS))
    max_code_chars: int = 2000  # estimated OpenECAD answer length
    # DeepCAD's own vectoriser drops models over these limits (extrudes counted per profile).
    max_extrudes: int = 10
    max_loops_per_profile: int = 6
    max_curves_per_loop: int = 14
    min_feature_share: float = 0.01  # sliver threshold, share of the part's largest side
    max_solids: int = 1

    def __post_init__(self) -> None:
        # Plain dicts: a Variety travels to worker processes, and mapping proxies do not pickle.
        object.__setattr__(self, "families", dict(self.families))
        object.__setattr__(self, "quirks", dict(self.quirks))
        unknown = sorted(set(self.families) - set(FAMILIES))
        if unknown:
            raise ValueError(f"unknown part families: {', '.join(unknown)}")
        if not any(w > 0 for w in self.families.values()):
            raise ValueError("no part family has a positive weight")
        low, high = self.size_range
        if not 0 < low <= high:
            raise ValueError(f"bad size range {self.size_range}")

    def with_families(self, names: list[str]) -> Variety:
        """The same settings drawing only ``names`` (at their default weights)."""
        return replace(self, families={n: DEFAULT_FAMILY_WEIGHTS.get(n, 1.0) for n in names})

    def admits(self, design: Design) -> bool:
        """True when ``design`` keeps within the extrude, loop, curve and answer budgets."""
        profiles = design.used_profiles()
        return (
            len(profiles) <= self.max_extrudes
            and all(len(p.loops) <= self.max_loops_per_profile for p in profiles)
            and all(len(lp.curves) <= self.max_curves_per_loop for p in profiles for lp in p.loops)
            and design.estimated_code_chars() <= self.max_code_chars
        )

    def draw_family(self, rng: random.Random) -> str:
        names = sorted(self.families)
        return rng.choices(names, weights=[self.families[n] for n in names])[0]


DEFAULT_VARIETY = Variety()
