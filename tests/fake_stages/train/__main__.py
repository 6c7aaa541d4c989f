"""The real training stage, optionally held at one optimizer step until it is signalled.

With ``FAKE_TRAIN_HOLD_STEP=N`` and ``FAKE_TRAIN_HELD=PATH`` in its environment, the run
trains step N for real, reports it, writes PATH (its pid) and then waits until a SIGTERM
arrives (a cancel, or a server stopping), which the real loop answers with a checkpoint at
step N. A test can so stop a run at a known step instead of racing it. Only the first run
to reach step N is held (PATH exists after it), so a resumed run goes on whatever it does;
without the variables this is the unchanged stage. Under torchrun only rank 0 is held (and
writes PATH): the other ranks wait for it in the step's collective, as real ranks would.
With ``FAKE_TRAIN_RELEASE=PATH2`` too, the held run also goes on (uncancelled) once PATH2
exists: a test can so keep a job running while it looks at the queue, then let it finish.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from stages.protocol import CancelFlag, Reporter
from stages.torchrun import env_rank
from stages.train import finetune
from stages.train.__main__ import main

HOLD_STEP = "FAKE_TRAIN_HOLD_STEP"
HELD_FILE = "FAKE_TRAIN_HELD"
RELEASE_FILE = "FAKE_TRAIN_RELEASE"
POLL_S = 0.01


def hold_at(step: int, held: Path) -> None:
    """Wrap the loop's per-step progress report: after step ``step``, wait for SIGTERM."""
    run_training, report_progress = finetune.run_training, finetune.report_progress
    flags: list[CancelFlag] = []

    def run(config: Any, reporter: Reporter, cancel: CancelFlag) -> dict[str, Any]:
        flags.append(cancel)
        return run_training(config, reporter, cancel)

    def report(reporter: Reporter, state: Any, config: Any, total: int, force: bool) -> None:
        # The held step is always reported (not throttled): the test reads it as where the
        # first attempt stopped.
        report_progress(reporter, state, config, total, force or state.step == step)
        if force or state.step != step or held.exists() or env_rank() != 0:
            return
        written = held.with_name(held.name + ".tmp")
        written.write_text(str(os.getpid()))
        written.replace(held)
        release = os.environ.get(RELEASE_FILE)
        while not flags[-1].requested and not (release and Path(release).exists()):
            time.sleep(POLL_S)

    finetune.run_training = run
    finetune.report_progress = report


if __name__ == "__main__":
    if os.environ.get(HOLD_STEP) and os.environ.get(HELD_FILE):
        hold_at(int(os.environ[HOLD_STEP]), Path(os.environ[HELD_FILE]))
    sys.exit(main())
