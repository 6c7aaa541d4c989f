"""Draw a solid's orthographic views as pixels: shaded faces, black edges, white paper.

One ``OrthoRenderer`` owns one GL context and is reused for every model a process draws
(creating contexts is slow, and pyrender's per-context caches must be kept). For each model it
builds one pyrender scene; each view then only moves the camera and the light and swaps in
that view's edge lines. Edge lines are shifted slightly towards the camera so they win the
depth test against the faces they lie on; hidden edges stay hidden.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from stages.render import backend
from stages.render.edges import EdgeSet, build_edge_set, view_lines
from stages.render.normals import corner_normals
from stages.render.programs import make_program_cache
from stages.render.settings import check_resolution
from stages.render.views import VIEW_TABLE, Framing, frame_model

BACKGROUND = (1.0, 1.0, 1.0, 1.0)  # floats: integers would be read on a 0-255 scale (black)
# Neutral grey: every picture is then grey, and a one-channel PNG is 3x cheaper to encode.
SOLID_COLOR = (0.82, 0.82, 0.82, 1.0)
EDGE_COLOR = (0.0, 0.0, 0.0, 1.0)
AMBIENT = 0.45
LIGHT_INTENSITY = 0.62
# The light sits above, left of and behind the camera: straight from an orthographic camera it
# would shade every face turned to it alike, and a drawing needs the faces told apart.
LIGHT_OFFSET = (-0.35, 0.55)  # (right, up), relative to the view direction
EDGE_LIFT_PIXELS = 1.5  # how far edge lines move towards the camera, in pixels
GL_TRIANGLES = 4
GL_LINES = 1


class MeshLike(Protocol):
    """What the renderer needs of a solid (``stages.cad.solid.Solid`` fits)."""

    vertices: NDArray[np.floating]  # (N, 3)
    faces: NDArray[np.integer]  # (M, 3), counter-clockwise seen from outside
    feature_edges: NDArray[np.integer]  # (K, 2) vertex index pairs


@dataclass(frozen=True, slots=True)
class PreparedModel:
    """A model's scene and per-view inputs, built once for all its views."""

    scene: Any
    camera_node: Any
    light_node: Any
    framing: Framing
    edges: EdgeSet
    vertices: NDArray[np.float64]


def line_width(resolution: int) -> float:
    """Edge thickness in pixels: one at 512 px and below, growing with the image."""
    return float(max(1, round(resolution / 512)))


class OrthoRenderer:
    """Renders views of solids into (H, W, 3) uint8 arrays. Not thread-safe; one per process."""

    def __init__(self, resolution: int | None = None, software_threads: int | None = None) -> None:
        """``resolution`` creates the GL context now (so a missing platform fails here);
        otherwise the first ``render`` creates it."""
        self._pyrender = backend.load_pyrender(software_threads)
        self._offscreen: Any = None
        self._wide_lines_refused = False
        self._resolution = 0
        self._solid_material = self._pyrender.MetallicRoughnessMaterial(
            baseColorFactor=SOLID_COLOR, metallicFactor=0.0, roughnessFactor=1.0
        )
        self._edge_material = self._pyrender.MetallicRoughnessMaterial(
            baseColorFactor=EDGE_COLOR, metallicFactor=0.0, roughnessFactor=1.0
        )
        if resolution is not None:
            self._context(check_resolution(resolution))

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        if self._offscreen is not None:
            self._offscreen.delete()
            self._offscreen = None

    def __enter__(self) -> OrthoRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _context(self, resolution: int) -> Any:
        """The offscreen context at ``resolution`` (re-created when the size changes)."""
        if self._offscreen is not None and self._resolution != resolution:
            self.close()
        if self._offscreen is None:
            pyrender = self._pyrender
            self._offscreen = pyrender.OffscreenRenderer(resolution, resolution)
            inner = self._offscreen._renderer
            inner._program_cache = make_program_cache(inner._program_cache.shader_dir)
            self._resolution = resolution
        return self._offscreen

    # -- drawing -----------------------------------------------------------------------------
    def render(
        self, mesh: MeshLike, views: Sequence[str], resolution: int = 512
    ) -> dict[str, NDArray[np.uint8]]:
        """Each named view of ``mesh`` as an RGB image, in the order asked."""
        resolution = check_resolution(resolution)
        unknown = [v for v in views if v not in VIEW_TABLE]
        if unknown:
            raise ValueError(f"unknown view {unknown[0]!r}")
        offscreen = self._context(resolution)
        prepared = self.prepare(mesh)
        return {name: self._draw_view(offscreen, prepared, name) for name in views}

    def prepare(self, mesh: MeshLike) -> PreparedModel:
        """Build the scene (solid, camera, light) and the edge data for one model."""
        pyrender = self._pyrender
        vertices = np.asarray(mesh.vertices, dtype=np.float64)
        faces = np.asarray(mesh.faces, dtype=np.int64)
        if len(faces) == 0:
            raise ValueError("the solid has no faces to draw")
        framing = frame_model(vertices)
        edges = build_edge_set(vertices, faces, np.asarray(mesh.feature_edges))
        corners = vertices[faces].reshape(-1, 3).astype(np.float32)
        normals = corner_normals(vertices, faces, edges.face_normals).astype(np.float32)
        solid = pyrender.Primitive(
            positions=corners, normals=normals, mode=GL_TRIANGLES, material=self._solid_material
        )
        scene = pyrender.Scene(bg_color=BACKGROUND, ambient_light=(AMBIENT,) * 3)
        scene.add(pyrender.Mesh([solid]))
        camera = pyrender.OrthographicCamera(
            xmag=framing.half_size,
            ymag=framing.half_size,
            znear=max(framing.radius * 0.5, 1e-9),
            zfar=framing.radius * 3.5 + 1e-9,
        )
        camera_node = scene.add(camera)
        light = pyrender.DirectionalLight(color=(1.0, 1.0, 1.0), intensity=LIGHT_INTENSITY)
        light_node = scene.add(light)
        return PreparedModel(scene, camera_node, light_node, framing, edges, vertices)

    def _draw_view(self, offscreen: Any, prepared: PreparedModel, name: str) -> NDArray[np.uint8]:
        pyrender = self._pyrender
        view = VIEW_TABLE[name]
        framing = prepared.framing
        basis = framing.view_basis(view)
        right, up, back = basis
        scene = prepared.scene
        scene.set_pose(prepared.camera_node, framing.camera_pose(view))
        scene.set_pose(prepared.light_node, _light_pose(right, up, back))

        lift = back * (EDGE_LIFT_PIXELS * 2.0 * framing.half_size / self._resolution)
        pairs = view_lines(prepared.edges, back)
        line_node = None
        if len(pairs):
            segments = prepared.vertices[pairs].reshape(-1, 3).astype(np.float32)
            lines = pyrender.Primitive(
                positions=segments, mode=GL_LINES, material=self._edge_material
            )
            # The lift is the node's pose, so pyrender (which draws far nodes first) always
            # draws the solid before its lines: a fixed order, hence the same pixels every time.
            lift_pose = np.eye(4)
            lift_pose[:3, 3] = lift
            line_node = scene.add(pyrender.Mesh([lines]), pose=lift_pose)
        try:
            return self._draw(offscreen, scene)
        finally:
            if line_node is not None:
                scene.remove_node(line_node)

    def _set_line_width(self, gl: Any, width: float) -> None:
        """Wide lines where the context allows them (forward-compatible core contexts, as on
        macOS, only draw 1-pixel lines and reject any other width)."""
        if width > 1.0 and not self._wide_lines_refused:
            try:
                gl.glLineWidth(width)
                return
            except gl.GLError:
                self._wide_lines_refused = True
        gl.glLineWidth(1.0)

    def _draw(self, offscreen: Any, scene: Any) -> NDArray[np.uint8]:
        """One frame, colour only (pyrender's own path also reads and converts depth)."""
        from OpenGL import GL

        flags = self._pyrender.RenderFlags.NONE
        platform, inner = offscreen._platform, offscreen._renderer
        platform.make_current()
        self._set_line_width(GL, line_width(self._resolution))
        if platform.supports_framebuffers():
            color, _depth = inner.render(scene, flags | self._pyrender.RenderFlags.OFFSCREEN)
        else:
            inner.render(scene, flags)
            color = inner.read_color_buf()
        platform.make_uncurrent()
        return np.ascontiguousarray(color)


def _light_pose(
    right: NDArray[np.float64], up: NDArray[np.float64], back: NDArray[np.float64]
) -> NDArray[np.float64]:
    """A directional light's pose: it shines along its -Z, from behind-left-above the camera."""
    toward_light = back + LIGHT_OFFSET[0] * right + LIGHT_OFFSET[1] * up
    z = toward_light / np.linalg.norm(toward_light)
    x = np.cross(up, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2] = x, y, z
    return pose
