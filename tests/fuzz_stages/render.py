"""One model (``--model``) is the real render stage; a dataset or batch job is the stand-in."""

import sys

if __name__ == "__main__":
    if "--model" in sys.argv:
        from stages.render.__main__ import main

        sys.exit(main())
    from tests.fuzz_stages.job import run

    sys.exit(run("render"))
