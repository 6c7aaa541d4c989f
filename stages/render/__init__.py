"""Orthographic pictures of CAD solids: the renderer and the ``render`` stage.

``python -m stages.render`` renders a dataset (see ``__main__``). What callers need without
importing any GL: the view names, the resolution limits and the GL platform that would be used.
The view convention is documented in ``stages.render.views``.
"""

from stages.render.backend import backend_name
from stages.render.settings import MAX_RESOLUTION, MIN_RESOLUTION, RenderSettings
from stages.render.views import COMPOSITE_VIEWS, DEFAULT_VIEWS, VIEWS

__all__ = [
    "COMPOSITE_VIEWS",
    "DEFAULT_VIEWS",
    "MAX_RESOLUTION",
    "MIN_RESOLUTION",
    "VIEWS",
    "RenderSettings",
    "backend_name",
]
