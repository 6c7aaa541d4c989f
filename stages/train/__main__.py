"""The training stage CLI: ``python -m stages.train --dataset DIR --output CKPT_DIR [...]``.

Every option defaults to "not given" (None): ``config.build_config`` fills it from the mode's
defaults (``config.MODE_DEFAULTS``), so no default is decided here. Emits the stage protocol's
events: ``start`` (total optimizer steps), ``progress``, ``warning`` (skipped records),
``metric`` (``kind`` step or epoch), ``result`` and ``done``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

# Nothing is ever downloaded: models come from local directories or the local cache.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from stages.protocol import EXIT_USAGE, CancelFlag, OneLineParser, Reporter, run_stage
from stages.torchrun import Launch, env_rank, torchrun_command, under_torchrun
from stages.train.config import COMPILE_CHOICES, DEVICES, MODES, PRECISIONS, build_config


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Every knob of a run (not where it reads and writes): shared with the preflight, so a
    request is checked with exactly the flags the run will get."""
    p.add_argument("--mode", choices=MODES, help="test-run (default) or full")
    p.add_argument("--train-samples", type=int, help="records used for training (default: mode's)")
    p.add_argument("--val-samples", type=int, help="records used for validation")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--gradient-accumulation", type=int, help="micro-batches per optimizer step")
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--warmup-ratio", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--max-grad-norm", type=float)
    p.add_argument("--lora-r", type=int)
    p.add_argument("--lora-alpha", type=int)
    p.add_argument("--lora-dropout", type=float)
    p.add_argument(
        "--lora-vision",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also put adapters on the vision tower",
    )
    p.add_argument("--base-model", help="tiny, a local checkpoint directory, or a cached hub id")
    p.add_argument("--device", choices=DEVICES)
    p.add_argument("--precision", choices=PRECISIONS)
    p.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--image-size", type=int, help="pixels (tiny model only; others fix it)")
    p.add_argument("--max-length", type=int, help="longest sequence; longer records are skipped")
    p.add_argument("--log-every", type=int, help="optimizer steps between metric events")
    p.add_argument("--save-every-steps", type=int, help="also checkpoint every N steps (0: off)")
    p.add_argument("--keep-last", type=int, help="checkpoints kept")
    p.add_argument("--seed", type=int)
    p.add_argument("--group-by-length", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument(
        "--compile", choices=COMPILE_CHOICES, help="torch.compile decoder layers (auto: on CUDA)"
    )
    p.add_argument("--num-workers", type=int, help="DataLoader worker processes")
    p.add_argument(
        "--eval-samples", type=int, help="score the best checkpoint on N validation records"
    )
    p.add_argument("--eval-every-epochs", type=int, help="also score the model every N epochs")
    p.add_argument(
        "--gpus", type=int, help="processes per node (GPUs; gloo ranks on a CPU), under torchrun"
    )


def run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The knobs given on the command line (None: not given), for ``build_config``."""
    skip = ("dataset", "output", "mode", "progress", "devices", *LAUNCH_OPTIONS)
    return {k: v for k, v in vars(args).items() if k not in skip}


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="python -m stages.train",
        description="LoRA fine-tuning of a vision-language model on a TinyLLaVA dataset",
    )
    p.add_argument(
        "--dataset", type=Path, required=True, help="directory with train.json, val.json, images/"
    )
    p.add_argument("--output", type=Path, required=True, help="checkpoint directory of this run")
    add_run_options(p)
    p.add_argument(
        "--resume",
        action="store_true",
        default=None,
        help="continue the run saved in --output from its last checkpoint",
    )
    add_launch_options(p)
    return p


# Where torchrun's ranks meet when a run spans several machines (read only by ``main``, which
# starts torchrun; the ranks it starts ignore them).
LAUNCH_OPTIONS = ("nnodes", "rdzv_endpoint", "rdzv_id", "node_rank")


def add_launch_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nnodes", type=int, help="machines the run spans (torchrun; default 1)")
    p.add_argument("--rdzv-endpoint", help="host:port of the rendezvous, the same on every node")
    p.add_argument("--rdzv-id", help="the run's rendezvous id, the same on every node")
    p.add_argument(
        "--node-rank",
        type=int,
        help="this machine's place, 0 to nnodes-1 (a static rendezvous that node 0 hosts at "
        "--rdzv-endpoint; without it the nodes meet in a c10d rendezvous)",
    )


def launch_of(argv: list[str]) -> Launch:
    """The torchrun launch ``argv`` asks for (one process when it asks for none)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--gpus", type=int)
    add_launch_options(p)
    known, _ = p.parse_known_args(argv)
    gpus, nnodes = max(known.gpus or 1, 1), max(known.nnodes or 1, 1)
    return Launch(gpus, nnodes, known.rdzv_endpoint, known.rdzv_id, known.node_rank)


def _body(args: argparse.Namespace, reporter: Reporter, cancel: CancelFlag) -> dict[str, Any]:
    from stages.train.distributed import leave_group
    from stages.train.finetune import run_training

    config = build_config(args.dataset, args.output, args.mode, **run_options(args))
    try:
        return run_training(config, reporter, cancel)
    finally:
        leave_group()


def this_module() -> str:
    """The module ``python -m`` ran (the tests' wrapper of this stage runs as its own)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    name = spec.name.removesuffix(".__main__") if spec is not None else ""
    return name or "stages.train"


def main(argv: list[str] | None = None) -> int:
    """Run the stage; with ``--gpus`` > 1 (or ``--nnodes`` > 1) outside torchrun, become
    torchrun starting this very command once per rank. Ranks other than 0 print nothing."""
    from_command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    launch = launch_of(argv)
    if from_command_line and launch.distributed and not under_torchrun():
        try:
            command = torchrun_command(this_module(), argv, launch)
        except ValueError as exc:  # no endpoint for several nodes, a node rank out of range
            print(f"train: {exc}", file=sys.stderr)
            return EXIT_USAGE
        os.execv(command[0], command)
    if env_rank() != 0:
        argv += ["--progress", "none"]
    return run_stage("train", build_parser(), _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
