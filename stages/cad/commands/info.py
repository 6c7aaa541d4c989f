"""`python -m stages.cad info MODEL.json`: build a DeepCAD model and print its solid's facts.

Prints one JSON object (``id``, ``volume`` in cubic metres, ``bbox``, ``triangles``,
``watertight``, ``solids``, ``key``) or, for a model that cannot be used, one JSON line
``{"error": reason, "detail": ...}`` and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from stages.cad.deepcad import load_deepcad
from stages.cad.key import geometric_key
from stages.cad.model import CadError
from stages.cad.solid import BUILD_TIME_LIMIT_S, Solid, build_solid

EXIT_BAD_MODEL = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a DeepCAD cad_json file")
    parser.add_argument(
        "--time-limit", type=float, default=5.0, help="seconds allowed to build the solid"
    )


def run(args: argparse.Namespace) -> int:
    return print_facts(lambda: model_info(args.model, time_limit=args.time_limit))


def print_facts(facts: Callable[[], dict[str, Any]]) -> int:
    """Print the facts as one JSON object (exit 0), or the CadError raised making them as one
    JSON line ``{"error": reason, "detail": ...}`` (exit 2); ``run-code`` prints the same."""
    try:
        result = facts()
    except CadError as exc:
        print(json.dumps({"error": exc.reason, "detail": exc.detail}))
        return EXIT_BAD_MODEL
    print(json.dumps(result))
    return 0


def model_info(path: str, *, time_limit: float = BUILD_TIME_LIMIT_S) -> dict[str, Any]:
    """The facts ``info`` prints, for callers that want them without a subprocess."""
    model = load_deepcad(path)
    return solid_facts(model.id, build_solid(model, time_limit=time_limit))


def solid_facts(model_id: str, solid: Solid) -> dict[str, Any]:
    """``info``'s object for a built solid (``run-code`` prints the same)."""
    return {
        "id": model_id,
        "volume": solid.volume,
        "bbox": solid.bbox.tolist(),
        "triangles": len(solid.faces),
        "watertight": solid.watertight,
        "solids": solid.num_solids,
        "key": geometric_key(solid),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m stages.cad.commands.info")
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
