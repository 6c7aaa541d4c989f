"""`python -m stages.hostinfo`: print what this host can do as one JSON object.

Devices and precisions (torch), the rendering backend, views and resolutions, and the
versions of the libraries that matter. The server runs this once and serves it at
/training/info.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from importlib import metadata
from typing import Any

LIBRARIES = (
    "torch",
    "transformers",
    "peft",
    "manifold3d",
    "trimesh",
    "pyrender",
    "PyOpenGL",
    "pillow",
    "numpy",
    "aiohttp",
    "ray",
)


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def devices() -> dict[str, Any]:
    import torch

    found = ["cpu"]
    info: dict[str, Any] = {"cuda_devices": []}
    if torch.cuda.is_available():
        found.append("cuda")
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            info["cuda_devices"].append(
                {"name": props.name, "memory_gb": round(props.total_memory / 2**30, 1)}
            )
    if torch.backends.mps.is_available():
        found.append("mps")
    precisions = ["fp32"]
    if "cuda" in found:
        precisions += ["fp16"] + (["bf16"] if torch.cuda.is_bf16_supported() else [])
    return {"available": found, "precisions": precisions, **info}


def rendering() -> dict[str, Any]:
    import stages.render as render

    return {
        "backend": render.backend_name(),
        "views": list(render.VIEWS),
        "default_views": list(render.DEFAULT_VIEWS),
        "min_resolution": render.MIN_RESOLUTION,
        "max_resolution": render.MAX_RESOLUTION,
        "composite": True,
    }


def executors() -> dict[str, Any]:
    """Where the dataset stages can run their per-model work (``--executor``)."""
    from stages.executors import LOCAL, available_executors

    return {"available": available_executors(), "default": LOCAL}


def training_defaults() -> dict[str, Any]:
    from stages.train.preflight import mode_defaults

    return mode_defaults()


def main() -> int:
    report: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": len(os.sched_getaffinity(0)),
        "libraries": library_versions(),
    }
    for key, probe in (
        ("devices", devices),
        ("rendering", rendering),
        ("executors", executors),
        ("training_defaults", training_defaults),
    ):
        try:
            report[key] = probe()
        except Exception as exc:  # report what is missing rather than fail the whole probe
            report[key] = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
