"""`python -m stages.cad code MODEL.json`: print a DeepCAD model's OpenECAD v2 code.

Prints exactly what OpenECAD's converter writes (nothing for a model without geometry), or,
for a model that cannot be read, one JSON line ``{"error": reason, "detail": ...}`` and exit
code 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from stages.cad.deepcad import load_deepcad
from stages.cad.model import CadError
from stages.cad.openecad import wrap_answer, write_code

EXIT_BAD_MODEL = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a DeepCAD cad_json file")
    parser.add_argument(
        "--answer", action="store_true", help="print the record's answer (code in a fence)"
    )


def run(args: argparse.Namespace) -> int:
    try:
        code = write_code(load_deepcad(args.model))
    except CadError as exc:
        print(json.dumps({"error": exc.reason, "detail": exc.detail}))
        return EXIT_BAD_MODEL
    sys.stdout.write(wrap_answer(code) + "\n" if args.answer else code)
    return 0
