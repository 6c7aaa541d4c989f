"""`python -m stages.cad <command>`: geometry tools at the command line.

Each command lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
this file only dispatches. Errors about a model print ``{"error": reason, "detail": ...}`` and
exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "info": ("stages.cad.commands.info", "print a model's solid properties as JSON"),
    "synth": ("stages.cad.commands.synth", "write synthetic DeepCAD-format models"),
    "code": ("stages.cad.commands.code", "print a model's OpenECAD v2 code"),
    "run-code": ("stages.cad.commands.run_code", "build the solid that OpenECAD code describes"),
    "score": ("stages.cad.commands.score", "score generated OpenECAD code against a reference"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stages.cad", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    modules = {}
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        modules[name] = module
        module.add_arguments(sub.add_parser(name, help=help_text))
    args = parser.parse_args(argv)
    return modules[args.command].run(args)


if __name__ == "__main__":
    sys.exit(main())
