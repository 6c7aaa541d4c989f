"""Argument parsing for this package's command lines: bad input is one line and exit 2.

argparse's own error prints the whole usage block; callers (the server, scripts) read one
line, so these parsers say only what was wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import NoReturn

from stages.protocol import EXIT_USAGE


class OneLineParser(argparse.ArgumentParser):
    """Reports a bad argument as ``prog: message`` on stderr and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message}\n")


class JsonErrorParser(argparse.ArgumentParser):
    """Reports a bad argument as ``{"error": message}`` on stdout and exits 2, for the
    request-time checks whose output the server parses."""

    def error(self, message: str) -> NoReturn:
        print(json.dumps({"error": f"{self.prog}: {message}"}), file=sys.stdout, flush=True)
        self.exit(EXIT_USAGE)


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value
