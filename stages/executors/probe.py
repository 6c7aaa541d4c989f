"""``python -m stages.executors.probe --ray-address HOST:PORT --path DIR``: can every node of
that Ray cluster reach the cluster and see ``DIR`` as this machine does?

The workers of the ``ray`` executor read the models and write the images themselves, so a
multi-node cluster needs the dataset's folder on a shared filesystem at the same path. The
probe writes a marker file with a fresh token into ``DIR`` and runs one task pinned to each
alive node (told apart by node id: several nodes may share one address) that reads it back.
It prints ``{"ok": true, "nodes": N}``, or, when the cluster cannot be reached or a node does
not see the marker, ``{"error", "detail", "field": "executor"}`` naming the nodes that cannot,
and exits 2 (the server answers 422 naming ``executor``). Bounded: the connection check and
the tasks each have a time limit.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from stages.protocol import EXIT_USAGE, JsonErrorParser, StageFailed

TASK_TIMEOUT_S = 60.0
MARKER_PREFIX = ".ray_probe_"


def _read_marker(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def node_label(node: dict[str, Any]) -> str:
    """How a node is named in the answer: its name (by default its address) and its id, which
    tells apart nodes that share an address (several on one machine)."""
    name = node.get("NodeName") or node.get("NodeManagerAddress") or "node"
    return f"{name} (node {node['NodeID'][:12]})"


def probe(address: str | None, folder: Path) -> dict[str, Any]:
    """``{"ok": True, "nodes": N}``, or raises ProbeFailed saying what is wrong."""
    from stages.executors.ray_session import RaySession

    if not folder.is_dir():
        raise ProbeFailed(f"{folder} is not a folder on this machine")
    token = secrets.token_hex(16)
    marker = folder / f"{MARKER_PREFIX}{token}"
    try:
        marker.write_text(token)
    except OSError as exc:
        raise ProbeFailed(f"cannot write to {folder}: {exc.strerror or exc}") from exc
    try:
        session = RaySession(address, 1)
    except StageFailed as exc:
        marker.unlink(missing_ok=True)
        raise ProbeFailed(exc.detail) from exc
    ray = session.ray
    try:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        nodes = [n for n in ray.nodes() if n.get("Alive")]
        read = ray.remote(num_cpus=0, max_retries=0)(_read_marker)
        refs = {
            node_label(n): read.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
            ).remote(str(marker))
            for n in nodes
        }
        ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=TASK_TIMEOUT_S)
        blind = []
        for name, ref in refs.items():
            if ref not in ready:
                blind.append(f"{name} (no answer within {TASK_TIMEOUT_S:.0f} s)")
            elif ray.get(ref) != token:
                blind.append(name)
        if blind:
            raise ProbeFailed(
                f"the Ray workers on {len(blind)} of {len(nodes)} nodes ({', '.join(blind)}) "
                f"cannot see {folder}: the ray executor needs the dataset folder on a shared "
                "filesystem at the same path on every node"
            )
        return {"ok": True, "nodes": len(nodes)}
    finally:
        marker.unlink(missing_ok=True)
        session.close()


class ProbeFailed(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    parser = JsonErrorParser(prog="python -m stages.executors.probe", description=__doc__)
    parser.add_argument("--ray-address", default=os.environ.get("CADVLM_RAY_ADDRESS"))
    parser.add_argument("--path", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        answer = probe(args.ray_address, args.path)
    except ProbeFailed as exc:
        print(json.dumps({"error": "ray_unusable", "detail": str(exc), "field": "executor"}))
        return EXIT_USAGE
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
