"""The ``executor`` request field: the stage flags for it, and the submit-time check that a
configured Ray cluster can see the dataset's storage.

``local`` (the default) adds nothing. ``ray`` adds ``--executor ray`` and, when the service
has a cluster (``--ray-address``), ``--ray-address``: the cluster's workers write the images
themselves, so the probe stage (``stages.executors.probe``) first checks that every node
reaches the cluster and sees ``folder`` at the same path; if not the request is a 422 naming
``executor``, before any job starts. Without an address each job starts a private Ray
instance on this machine, which needs no check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.config import Config
from server.stagecalls import check_or_422

EXECUTOR_FIELD = "executor"
PROBE_STAGE = "executors.probe"


async def executor_args(config: Config, body: Any, folder: Path) -> list[str]:
    """Stage flags for the body's ``executor`` (bodies without one run locally)."""
    if getattr(body, EXECUTOR_FIELD, "local") != "ray":
        return []
    if not config.ray_address:
        return ["--executor", "ray"]
    probe_args = ["--ray-address", config.ray_address, "--path", str(folder)]
    await check_or_422(config, PROBE_STAGE, probe_args, EXECUTOR_FIELD)
    return ["--executor", "ray", "--ray-address", config.ray_address]
