"""What a render run is asked for, checked once at the edge (CLI or caller).

Kept free of GL and mesh imports so the server can read the limits cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass

from stages.cad.limits import BUILD_TIME_LIMIT_S as DEFAULT_TIME_LIMIT_S
from stages.render.views import DEFAULT_VIEWS, parse_views

MIN_RESOLUTION = 64
MAX_RESOLUTION = 2048
DEFAULT_RESOLUTION = 512


def check_resolution(resolution: int) -> int:
    """The resolution as int, or ValueError naming the allowed range."""
    value = int(resolution)
    if not MIN_RESOLUTION <= value <= MAX_RESOLUTION:
        raise ValueError(
            f"resolution {value} out of range {MIN_RESOLUTION}..{MAX_RESOLUTION} pixels"
        )
    return value


@dataclass(frozen=True, slots=True)
class RenderSettings:
    """What every model of one run is drawn with."""

    views: tuple[str, ...] = DEFAULT_VIEWS
    resolution: int = DEFAULT_RESOLUTION
    composite: bool = False
    time_limit: float = DEFAULT_TIME_LIMIT_S
    skip_existing: bool = True

    @classmethod
    def checked(
        cls,
        views: str | list[str] | tuple[str, ...] = DEFAULT_VIEWS,
        resolution: int = DEFAULT_RESOLUTION,
        composite: bool = False,
        time_limit: float = DEFAULT_TIME_LIMIT_S,
        skip_existing: bool = True,
    ) -> RenderSettings:
        """Settings from raw values; ValueError says which value is wrong and why."""
        if not time_limit > 0:
            raise ValueError(f"time limit must be positive, not {time_limit}")
        return cls(
            parse_views(views),
            check_resolution(resolution),
            composite,
            float(time_limit),
            skip_existing,
        )
