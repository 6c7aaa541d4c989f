"""The validate job: the stand-in."""

import sys

from tests.fuzz_stages.job import run

if __name__ == "__main__":
    sys.exit(run("validate"))
