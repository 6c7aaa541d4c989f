"""A test-only stage whose behaviour is chosen by flags: it exercises the runner for real.

Behaviours: ``ok`` (counts items, result, done), ``noisy`` (prints lines that are not JSON
among its events), ``crash`` (writes to stderr and exits 3 without ``done``), ``vanish``
(exits 0 without ``done``), ``stubborn`` (traps SIGTERM and carries on, so only SIGKILL ends
it; ``--marker PATH`` is written when the first SIGTERM arrives), ``forever`` (counts until
cancelled; optional child process). ``--pidfile`` is written once the stage is set up (its
SIGTERM trap included). ``--fill PATH`` first writes PATH until its disk is full, as a stage
that runs out of space would leave it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time

from stages.protocol import Reporter, run_stage


def fill_disk(path: str) -> None:
    block = b"\0" * 65536
    with open(path, "wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(block)


def trap_sigterm(marker: str | None) -> None:
    """Survive SIGTERM (a child started later gets the default action back at exec)."""

    def trapped(signum: int, frame: object) -> None:
        if marker and not os.path.exists(marker):
            with open(marker, "w") as f:
                f.write(str(os.getpid()))

    signal.signal(signal.SIGTERM, trapped)


def body(args: argparse.Namespace, reporter: Reporter, cancel: object) -> dict | None:
    if args.fill:
        fill_disk(args.fill)
    if args.behaviour == "stubborn":
        trap_sigterm(args.marker)
    if args.pidfile:
        with open(args.pidfile, "w") as f:
            f.write(str(os.getpid()))
    child = None
    if args.child:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        if args.pidfile:
            with open(args.pidfile + ".child", "w") as f:
                f.write(str(child.pid))
    reporter.start(args.items, "items")
    endless = args.behaviour in ("forever", "stubborn")
    for i in range(10**9 if endless else args.items):
        time.sleep(args.delay)
        if args.behaviour == "noisy" and i % 2 == 0:
            print(f"not json {i}", flush=True)
            print("[1, 2, 3]", flush=True)
        if args.behaviour == "crash" and i == 2:
            print("something broke in item 2", file=sys.stderr, flush=True)
            os._exit(3)
        if args.behaviour == "vanish" and i == 2:
            sys.stdout.flush()
            os._exit(0)
        if i % 5 == 4:
            reporter.warning(f"item{i}", "suspicious item")
        reporter.advance(ok=True, images_rendered=1)
    return {"items": args.items, "behaviour": args.behaviour}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--behaviour", default="ok")
    parser.add_argument("--items", type=int, default=5)
    parser.add_argument("--delay", type=float, default=0.01)
    parser.add_argument("--pidfile")
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--marker")
    parser.add_argument("--fill")
    return run_stage("fake", parser, body)


if __name__ == "__main__":
    sys.exit(main())
