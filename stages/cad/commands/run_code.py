"""`python -m stages.cad run-code FILE.py`: build the solid an OpenECAD v2 program describes.

Prints the same JSON object as ``info`` (same keys, DeepCAD metres; ``id`` is the file's
stem) or, for code that does not parse or build, one JSON line ``{"error": reason,
"detail": ...}`` and exit code 2.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from stages.cad.commands.info import solid_facts
from stages.cad.model import CadError
from stages.cad.openecad import parse_code
from stages.cad.openecad.files import read_code_file
from stages.cad.solid import build_solid

EXIT_BAD_MODEL = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("code", help="an OpenECAD v2 program (or an answer holding one)")
    parser.add_argument(
        "--time-limit", type=float, default=5.0, help="seconds allowed to build the solid"
    )


def run(args: argparse.Namespace) -> int:
    try:
        facts = code_info(args.code, time_limit=args.time_limit)
    except CadError as exc:
        print(json.dumps({"error": exc.reason, "detail": exc.detail}))
        return EXIT_BAD_MODEL
    print(json.dumps(facts))
    return 0


def code_info(path: str | Path, *, time_limit: float = 5.0) -> dict[str, Any]:
    """What ``run-code`` prints, for callers that want it without a subprocess."""
    model = parse_code(read_code_file(path), Path(path).stem)
    return solid_facts(model.id, build_solid(model, time_limit=time_limit))
