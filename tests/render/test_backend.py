"""Which GL platform is chosen, and the limits callers read without importing GL."""

from __future__ import annotations

import pytest

import stages.render as render
from stages.render import backend


@pytest.fixture
def no_platform_hints(monkeypatch):
    for name in ("PYOPENGL_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(backend, "nvidia_egl_available", lambda: False)
    return monkeypatch


def test_headless_cpu_machines_use_osmesa(no_platform_hints):
    assert backend.backend_name() == "osmesa"


def test_a_gpu_without_display_uses_egl(no_platform_hints):
    no_platform_hints.setattr(backend, "nvidia_egl_available", lambda: True)
    assert backend.backend_name() == "egl"


def test_a_display_uses_pyrenders_window_context(no_platform_hints):
    no_platform_hints.setattr(backend, "nvidia_egl_available", lambda: True)
    no_platform_hints.setenv("DISPLAY", ":0")
    assert backend.backend_name() == "pyglet"


@pytest.mark.parametrize(
    ("forced", "name"), [("egl", "egl"), ("OSMesa", "osmesa"), ("x11", "pyglet")]
)
def test_pyopengl_platform_overrides_the_choice(no_platform_hints, forced, name):
    no_platform_hints.setenv("DISPLAY", ":0")
    no_platform_hints.setenv("PYOPENGL_PLATFORM", forced)
    assert backend.backend_name() == name


def test_the_package_exposes_views_and_limits():
    assert render.VIEWS == ("front", "top", "right", "back", "left", "bottom", "iso")
    assert render.DEFAULT_VIEWS == ("front", "top", "right")
    assert (render.MIN_RESOLUTION, render.MAX_RESOLUTION) == (64, 2048)
    assert render.backend_name() in backend.PLATFORMS
