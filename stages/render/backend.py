"""Which OpenGL platform draws the pictures, and pyrender made fit to use it.

pyrender picks its platform from ``PYOPENGL_PLATFORM`` at import time, so the choice must be
made before pyrender or PyOpenGL is first imported in the process. The rules, in order:

1. ``PYOPENGL_PLATFORM`` already set (``osmesa``, ``egl``; anything else means a window
   system) is the user's override and is kept.
2. A display (``DISPLAY`` or ``WAYLAND_DISPLAY``): pyrender's normal pyglet context.
3. An NVIDIA GPU with an EGL loader: ``egl`` (hardware rendering without a display).
4. Otherwise ``osmesa``: Mesa's software rasteriser on the CPU.

``load_pyrender()`` also applies the fixes measured on this project's machines (see
``shared/notes/rendering.md``): numpy 2 lost ``np.infty``; pyglet must be headless under EGL;
llvmpipe's threads are capped per process (``LP_NUM_THREADS``) because workers already use
every core.
"""

from __future__ import annotations

import ctypes.util
import logging
import os
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

PLATFORMS = ("osmesa", "egl", "pyglet")


def backend_name() -> str:
    """The GL platform this process would render with (imports no OpenGL)."""
    forced = os.environ.get("PYOPENGL_PLATFORM", "").strip().lower()
    if forced:
        return forced if forced in ("osmesa", "egl") else "pyglet"
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return "pyglet"
    if nvidia_egl_available():
        return "egl"
    return "osmesa"


def nvidia_egl_available() -> bool:
    """An NVIDIA driver is loaded and an EGL loader is installed."""
    return Path("/dev/nvidiactl").exists() and ctypes.util.find_library("EGL") is not None


def _apply_numpy_shim() -> None:
    """pyrender still reads ``np.infty`` for scene bounds; numpy 2 removed it."""
    if not hasattr(np, "infty"):
        np.infty = np.inf  # type: ignore[attr-defined]


def load_pyrender(software_threads: int | None = None) -> ModuleType:
    """Configure the platform for this process and import pyrender.

    ``software_threads`` caps llvmpipe's rasteriser threads (OSMesa only); ``None`` leaves
    Mesa's default. Raises RuntimeError when PyOpenGL was already imported for another platform.
    """
    name = backend_name()
    if name in ("osmesa", "egl"):
        if "OpenGL" in sys.modules and os.environ.get("PYOPENGL_PLATFORM") != name:
            raise RuntimeError(f"PyOpenGL was imported before the {name} platform was chosen")
        os.environ["PYOPENGL_PLATFORM"] = name
    if name == "osmesa" and software_threads is not None:
        os.environ.setdefault("LP_NUM_THREADS", str(max(0, int(software_threads))))
    if name == "egl":
        import pyglet

        pyglet.options["headless"] = True
        pyglet.options["shadow_window"] = False
    _apply_numpy_shim()
    # PyOpenGL logs at INFO that its optional C accelerator is absent: noise on every run.
    logging.getLogger("OpenGL").setLevel(logging.WARNING)
    import pyrender

    return pyrender
