"""Known parts for the render tests, built directly with manifold3d.

Each part is a ``TestSolid`` with what the renderer reads of a ``stages.cad.solid.Solid``;
feature edges are the mesh edges whose faces meet at more than ``CREASE_DEGREES``.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import manifold3d
import numpy as np
import trimesh
from numpy.typing import NDArray

from stages.cad.model import CadError

CREASE_DEGREES = 30.0


@dataclass(frozen=True)
class TestSolid:
    vertices: NDArray[np.float64]
    faces: NDArray[np.int32]
    feature_edges: NDArray[np.int32]


def solid_from_manifold(body: manifold3d.Manifold) -> TestSolid:
    mesh = body.to_mesh()
    vertices = np.asarray(mesh.vert_properties[:, :3], dtype=np.float64)
    faces = np.asarray(mesh.tri_verts, dtype=np.int32)
    tri = trimesh.Trimesh(vertices, faces, process=False)
    creases = tri.face_adjacency_angles > np.radians(CREASE_DEGREES)
    feature_edges = np.asarray(tri.face_adjacency_edges[creases], dtype=np.int32)
    return TestSolid(vertices, faces, feature_edges)


def plate_with_hole(
    size: tuple[float, float, float] = (0.08, 0.06, 0.01),
    hole_center: tuple[float, float] = (0.0, 0.0),
    hole_radius: float = 0.012,
) -> TestSolid:
    """A plate centred on the origin, lying in XY, with a vertical round through-hole."""
    plate = manifold3d.Manifold.cube(size, center=True)
    hole = manifold3d.Manifold.cylinder(
        size[2] * 3, hole_radius, hole_radius, circular_segments=96, center=True
    ).translate((hole_center[0], hole_center[1], 0.0))
    return solid_from_manifold(plate - hole)


def box(size: tuple[float, float, float], offset: tuple[float, float, float] = (0, 0, 0)):
    """A box centred on ``offset``."""
    return solid_from_manifold(manifold3d.Manifold.cube(size, center=True).translate(offset))


def l_bracket() -> TestSolid:
    """An L: a long base along +X and an upright at its -X end (asymmetric in every view)."""
    base = manifold3d.Manifold.cube((0.10, 0.04, 0.01)).translate((0.0, 0.0, 0.0))
    upright = manifold3d.Manifold.cube((0.01, 0.04, 0.06)).translate((0.0, 0.0, 0.0))
    return solid_from_manifold(base + upright)


PARTS = {"plate_with_hole": plate_with_hole, "box": box, "l_bracket": l_bracket}


def load_part_file(path: Path, time_limit: float) -> TestSolid:
    """A SolidLoader for tests: the file names a part, or how the model should go wrong.

    ``{"part": "box", "args": {...}}`` builds a part; ``{"fail": "reason"}`` raises CadError;
    ``{"sleep": seconds}`` hangs (for time limits); ``{"crash": code}`` ends the process;
    ``{"kill": true}`` kills it with SIGKILL; ``{"kill_once": MARKER, "part": ...}`` does so
    only while MARKER does not exist (it creates it first), so a retry builds the part;
    ``{"hold": MARKER}`` writes MARKER (the worker's pid) and then never returns, so a test
    can act while a model is certainly being drawn.
    """
    spec = json.loads(Path(path).read_text())
    if spec.get("kill"):
        os.kill(os.getpid(), signal.SIGKILL)
    if "kill_once" in spec:
        try:
            Path(spec["kill_once"]).touch(exist_ok=False)
        except FileExistsError:
            pass
        else:
            os.kill(os.getpid(), signal.SIGKILL)
    if "hold" in spec:
        held = Path(spec["hold"])
        held.with_suffix(".tmp").write_text(str(os.getpid()))
        held.with_suffix(".tmp").replace(held)
        threading.Event().wait()
    if "fail" in spec:
        raise CadError(spec["fail"], "this test model is broken on purpose")
    if "sleep" in spec:
        time.sleep(float(spec["sleep"]))
    if "crash" in spec:
        os._exit(int(spec["crash"]))
    return PARTS[spec["part"]](**spec.get("args", {}))


def write_part_dataset(root: Path, specs: dict[str, dict]) -> Path:
    """A dataset folder whose cad_json/ holds one spec file per model id."""
    folder = root / "cad_json" / "0000"
    folder.mkdir(parents=True, exist_ok=True)
    for model_id, spec in specs.items():
        (folder / f"{model_id}.json").write_text(json.dumps(spec))
    return root
