"""Building a ``CadModel`` into a triangle solid, as DeepCAD's exact kernel would.

``build`` runs the extrudes in order (``build_solid`` returns a ``Solid``); it draws each
sketch profile as a polygon (``sections``), keeps the model's separate bodies apart
(``bodies``) and reads the finished mesh's normals and crease edges (``mesh``).
"""

from stages.cad.limits import BUILD_TIME_LIMIT_S
from stages.cad.solid.build import Solid, build_solid

__all__ = ["BUILD_TIME_LIMIT_S", "Solid", "build_solid"]
