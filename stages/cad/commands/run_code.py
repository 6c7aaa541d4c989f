"""`python -m stages.cad run-code FILE.py`: build the solid an OpenECAD v2 program describes.

Prints the same JSON object as ``info`` (same keys, DeepCAD metres; ``id`` is the file's
stem) or, for code that does not parse or build, one JSON line ``{"error": reason,
"detail": ...}`` and exit code 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from stages.cad.commands.info import print_facts, solid_facts
from stages.cad.openecad import parse_code
from stages.cad.openecad.files import read_code_file
from stages.cad.solid import BUILD_TIME_LIMIT_S, build_solid


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("code", help="an OpenECAD v2 program (or an answer holding one)")
    parser.add_argument(
        "--time-limit", type=float, default=5.0, help="seconds allowed to build the solid"
    )


def run(args: argparse.Namespace) -> int:
    return print_facts(lambda: code_info(args.code, time_limit=args.time_limit))


def code_info(path: str | Path, *, time_limit: float = BUILD_TIME_LIMIT_S) -> dict[str, Any]:
    """What ``run-code`` prints, for callers that want it without a subprocess."""
    model = parse_code(read_code_file(path), Path(path).stem)
    return solid_facts(model.id, build_solid(model, time_limit=time_limit))
