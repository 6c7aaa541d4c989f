"""Training on several ranks (torchrun, DDP), on a CPU with gloo and 2 real processes.

The runs start as a user would: ``python -m <stage> ... --gpus 2``, which becomes torchrun
(``python -m stages.torchrun``) starting the stage once per rank; or, as two nodes on this
machine, two such commands with ``--gpus 1 --nnodes 2 --node-rank 0|1``. Cancels land at a
known step with the tests' wrapper of the stage (``tests.fake_stages.train``): rank 0 is held
after the step until a SIGTERM arrives, rank 1 waits for it in the step's collective.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil
import pytest
import torch

from server.jobs.process import group_processes
from stages.torchrun import Launch, torchrun_command, torchrun_options
from stages.train.checkpoint import STATE_FILE, TENSORS_FILE, RunLayout, latest_checkpoint
from stages.train.distributed import Ranks
from tests.conftest import REPO_ROOT
from tests.train.helpers import events_of, run_cli

# 8 records, 2 epochs: 1 rank at batch 4 and 2 ranks at batch 2 train the same 4 global
# batches. No dropout: its masks are drawn per rank's tensor shapes, so with dropout the two
# runs would differ by design, not by arithmetic.
DDP_ARGS = [
    "--epochs", "2",
    "--train-samples", "8",
    "--val-samples", "4",
    "--image-size", "32",
    "--max-length", "1024",
    "--log-every", "1",
    "--keep-last", "3",
    "--lora-dropout", "0",
    "--device", "cpu",
]  # fmt: skip
STEPS = 4
# Float32 sums in another order: a rank's token-mean over its half of a batch times its token
# share, added by the all-reduce, is the one-rank mean over the whole batch up to rounding
# (batches padded to other lengths also change the matmul shapes). Measured: the curves agree
# to about 1e-7 relative; 1e-4 leaves room for the few steps to amplify that, while any real
# difference (a rank skipping a batch, unaveraged gradients, a wrong loss weighting) is 1e-2
# or more.
REL_TOL = 1e-4
RUN_TIMEOUT_S = 300


class Ranked:
    """A run of the stage on ``gpus`` ranks (2: one node's; 1: one of several nodes') as a
    process group of its own, its output in files; ``prefix`` runs it under a wrapper."""

    def __init__(
        self,
        work: Path,
        argv: list[str],
        env: dict[str, str] | None = None,
        gpus: int = 2,
        prefix: Sequence[str] = (),
    ) -> None:
        self.work = work
        self.marker = argv[argv.index("--output") + 1]  # on every rank's command line
        work.mkdir(parents=True, exist_ok=True)
        self.out, self.err = work / "events.jsonl", work / "stderr.log"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.process = subprocess.Popen(
                [*prefix, sys.executable, "-m", "tests.fake_stages.train", *argv,
                 "--gpus", str(gpus), "--progress", "json"],
                cwd=REPO_ROOT,
                env={**os.environ, **(env or {})},
                stdout=out,
                stderr=err,
                start_new_session=True,
            )  # fmt: skip

    def wait(self) -> int:
        return self.process.wait(timeout=RUN_TIMEOUT_S)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.strip()]

    def stderr(self) -> str:
        return self.err.read_text()

    def wait_for(self, path: Path) -> None:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while not path.exists():
            assert self.process.poll() is None, f"the run ended first: {self.stderr()[-2000:]}"
            assert time.monotonic() < deadline, "the run never reached the step"
            time.sleep(0.05)

    def processes(self) -> list[psutil.Process]:
        """Every live process of the run: its group, and any rank that left it."""
        found = {p.pid: p for p in group_processes(self.process.pid)}
        for proc in psutil.process_iter(["pid", "cmdline"]):
            try:
                mine = self.marker in " ".join(proc.info["cmdline"] or [])
                if mine and proc.status() != psutil.STATUS_ZOMBIE:
                    found[proc.pid] = proc
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return list(found.values())

    def ranks(self) -> list[psutil.Process]:
        return [p for p in self.processes() if p.pid != self.process.pid]


def step_losses(events: list[dict[str, Any]]) -> list[float]:
    return [e["train_loss"] for e in events_of(events, "metric", kind="step")]


def val_losses(events: list[dict[str, Any]]) -> list[float]:
    return [e["val_loss"] for e in events_of(events, "metric", kind="epoch")]


def checkpoint_step(output: Path) -> int:
    checkpoint = latest_checkpoint(RunLayout(output))
    assert checkpoint is not None
    return json.loads((checkpoint / STATE_FILE).read_text())["step"]


def argv_for(dataset: Path, output: Path, batch_size: int) -> list[str]:
    return ["--dataset", str(dataset), "--output", str(output), *DDP_ARGS,
            "--batch-size", str(batch_size)]  # fmt: skip


def held_env(work: Path, step: int) -> tuple[dict[str, str], Path]:
    held = work / "held"
    return {"FAKE_TRAIN_HOLD_STEP": str(step), "FAKE_TRAIN_HELD": str(held)}, held


# -- what needs no process ------------------------------------------------------------------------
def test_each_rank_gets_a_disjoint_contiguous_share_of_every_batch() -> None:
    order = list(range(10))
    for batch in ([0, 1, 2, 3], [4, 5, 6], [7]):
        shares = [Ranks(rank, 2).shard(batch, order) for rank in range(2)]
        assert all(shares), "no rank may have an empty step"
        if len(batch) >= 2:
            assert shares[0] + shares[1] == batch
    # A batch shorter than the world is padded from the epoch's start, as DistributedSampler.
    assert [Ranks(r, 2).shard([7], order) for r in range(2)] == [[7], [0]]
    assert Ranks().shard([1, 2, 3], order) == [1, 2, 3]


def test_the_torchrun_command_for_one_node_and_for_two() -> None:
    one = torchrun_command("stages.train", ["--gpus", "2"], Launch(2), shutdown_timeout_s=120)
    assert one[:3] == [sys.executable, "-m", "stages.torchrun"]
    assert one[3:] == ["--nproc-per-node", "2", "--standalone", "--shutdown-timeout", "120",
                       "-m", "stages.train", "--gpus", "2"]  # fmt: skip
    two = torchrun_options(Launch(4, 2, "node0.example:29400", "training_ab12"))
    assert two == ["--nproc-per-node", "4", "--nnodes", "2", "--rdzv-backend", "c10d",
                   "--rdzv-endpoint", "node0.example:29400",
                   "--rdzv-id", "training_ab12"]  # fmt: skip
    with pytest.raises(ValueError, match="rendezvous"):
        torchrun_options(Launch(1, 2))
    assert Launch.from_json(Launch(4, 2, "h:1", "x").as_json()) == Launch(4, 2, "h:1", "x")
    # With a node rank: a static rendezvous that node 0 hosts at the endpoint.
    ranked = torchrun_options(Launch(1, 2, "node0.example:29400", node_rank=1))
    assert ranked == ["--nproc-per-node", "1", "--nnodes", "2", "--node-rank", "1",
                      "--rdzv-backend", "static",
                      "--rdzv-endpoint", "node0.example:29400"]  # fmt: skip
    with pytest.raises(ValueError, match="node rank must be 0 to 1"):
        torchrun_options(Launch(1, 2, "h:1", node_rank=2))
    assert Launch.from_json(Launch(1, 2, "h:1", None, 0).as_json()) == Launch(1, 2, "h:1", None, 0)
    assert Launch.from_json({"nnodes": 2}).node_rank is None  # a job stored before node ranks


def test_two_processes_in_process_are_refused_naming_gpus(golden_dataset: Path, tmp_path: Path):
    """Only the command line becomes torchrun; called as a function it says what to do."""
    code, events = run_cli([*argv_for(golden_dataset, tmp_path / "o", 2), "--gpus", "2"])
    assert code == 2
    assert "gpus" in events_of(events, "done")[0]["error"]


# -- real ranks -----------------------------------------------------------------------------------
def test_a_killed_launcher_leaves_no_rank_behind(golden_dataset: Path, tmp_path: Path) -> None:
    """SIGKILL to the job's process group (a cancel's last resort, a dead server's cleanup)
    reaches every rank: torch starts ranks in sessions of their own, stages.torchrun keeps
    them in the launcher's group (LlamaFactory#3978)."""
    env, held = held_env(tmp_path, 1)
    run = Ranked(tmp_path, argv_for(golden_dataset, tmp_path / "ckpt", 2), env)
    run.wait_for(held)
    ranks = run.ranks()
    assert len(ranks) == 2, [p.cmdline() for p in ranks]
    assert {os.getpgid(p.pid) for p in ranks} == {run.process.pid}
    os.killpg(run.process.pid, signal.SIGKILL)
    run.process.wait(timeout=30)
    psutil.wait_procs(ranks, timeout=30)
    assert run.processes() == []


@pytest.fixture(scope="module")
def one_rank(golden_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    code, events = run_cli(argv_for(golden_dataset, tmp_path_factory.mktemp("one") / "o", 4))
    assert code == 0, events[-1]
    return events


@pytest.fixture(scope="module")
def two_ranks(golden_dataset: Path, tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("two")
    run = Ranked(work, argv_for(golden_dataset, work / "ckpt", 2))
    assert run.wait() == 0, run.stderr()[-3000:]
    return run


@pytest.mark.slow
def test_two_ranks_at_batch_b_match_one_rank_at_2b(one_rank: list[dict], two_ranks: Ranked):
    events = two_ranks.events()
    assert [e["event"] for e in events].count("done") == 1  # rank 1 prints nothing
    assert events_of(events, "done")[0]["status"] == "completed"
    ones, twos = step_losses(one_rank), step_losses(events)
    assert len(ones) == len(twos) == STEPS
    pairs = [*zip(ones, twos, strict=True)]
    pairs += zip(val_losses(one_rank), val_losses(events), strict=True)
    for a, b in pairs:
        assert math.isclose(a, b, rel_tol=REL_TOL), (ones, twos)
    result = events_of(events, "result")[0]
    assert result["world_size"] == 2 and result["steps"] == STEPS
    ckpt = two_ranks.work / "ckpt"
    assert (ckpt / "adapter").is_dir() and (ckpt / "results.json").is_file()
    assert two_ranks.processes() == []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# In a new mount namespace: "$1" bound onto itself read-only, then the command.
READ_ONLY = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1" && shift && exec "$@"'


def read_only(folder: Path) -> list[str]:
    """A prefix that runs a command where ``folder`` is read-only (and still shows, live,
    what others write into it: shared storage that this node must not write to)."""
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", READ_ONLY, "sh",
            str(folder)]  # fmt: skip


@pytest.mark.slow
def test_two_nodes_of_one_rank_match_one_node_of_two(
    golden_dataset: Path, tmp_path: Path, two_ranks: Ranked
) -> None:
    """Two torchrun launchers on this machine as two nodes (``--nnodes 2 --node-rank 0|1``:
    a static rendezvous node 0 hosts on loopback, gloo between them) train exactly the
    single-node 2-rank run. Node 1 runs where the shared output folder is read-only, so the
    run completing proves its rank wrote nothing there: node 0's rank 0 alone writes the
    checkpoints, the adapter and the results, and alone prints events."""
    output = tmp_path / "ckpt"
    output.mkdir()
    rendezvous = ["--nnodes", "2", "--rdzv-endpoint", f"127.0.0.1:{free_port()}"]
    nodes = [
        Ranked(
            tmp_path / f"node{rank}",
            [*argv_for(golden_dataset, output, 2), *rendezvous, "--node-rank", str(rank)],
            gpus=1,
            prefix=read_only(output) if rank == 1 else (),
        )
        for rank in (0, 1)
    ]
    try:
        codes = [node.wait() for node in nodes]
    finally:  # a node that failed leaves the other waiting at the rendezvous
        for node in nodes:
            if node.process.poll() is None:
                os.killpg(node.process.pid, signal.SIGKILL)
    assert codes == [0, 0], [node.stderr()[-3000:] for node in nodes]
    assert "rank 0 of 2 joined" in nodes[0].stderr()
    assert "rank 1 of 2 joined" in nodes[1].stderr()
    assert nodes[1].events() == [], "only rank 0 prints events"
    events = nodes[0].events()
    assert [e["status"] for e in events_of(events, "done")] == ["completed"]
    result = events_of(events, "result")[0]
    assert result["world_size"] == 2 and result["steps"] == STEPS
    expected = two_ranks.events()
    pairs = [*zip(step_losses(expected), step_losses(events), strict=True)]
    pairs += zip(val_losses(expected), val_losses(events), strict=True)
    assert len(pairs) == STEPS + 2
    for a, b in pairs:
        assert math.isclose(a, b, rel_tol=REL_TOL), (step_losses(expected), step_losses(events))
    assert (output / "adapter").is_dir() and (output / "results.json").is_file()
    assert checkpoint_step(output) == STEPS
    assert nodes[0].processes() == []  # both nodes' launchers and ranks are gone


@pytest.mark.slow
def test_cancel_mid_epoch_stops_every_rank_and_resume_continues(
    golden_dataset: Path, tmp_path: Path, two_ranks: Ranked
) -> None:
    """SIGTERM to the group at step 1 (of 2 in the epoch): both ranks stop at step 1, rank 0
    checkpoints once, nothing is left running; a resume on 2 ranks restores both (weights and
    optimizer state: otherwise rank 1's updates would drift from rank 0's) and ends exactly
    where the uninterrupted 2-rank run ended."""
    env, held = held_env(tmp_path, 1)
    output = tmp_path / "ckpt"
    run = Ranked(tmp_path / "first", argv_for(golden_dataset, output, 2), env)
    run.wait_for(held)
    ranks = run.ranks()
    os.killpg(run.process.pid, signal.SIGTERM)
    run.wait()
    psutil.wait_procs(ranks, timeout=30)
    assert run.processes() == []
    events = run.events()
    assert [e["status"] for e in events_of(events, "done")] == ["cancelled"]
    log = run.stderr()
    assert "rank 0 stopped at step 1" in log and "rank 1 stopped at step 1" in log
    assert checkpoint_step(output) == 1
    assert [p.name for p in RunLayout(output).checkpoints_dir.iterdir()] == ["step-00000001"]
    saved = torch.load(latest_checkpoint(RunLayout(output)) / TENSORS_FILE, weights_only=True)
    assert len(saved["rank_rng"]) == 2  # each rank's random state, for its dropout

    resumed = Ranked(tmp_path / "second", [*argv_for(golden_dataset, output, 2), "--resume"])
    assert resumed.wait() == 0, resumed.stderr()[-3000:]
    log = resumed.stderr()
    assert "rank 0 resuming from" in log and "rank 1 resuming from" in log
    events = resumed.events()
    assert events_of(events, "start")[0]["total"] == STEPS
    uninterrupted = step_losses(two_ranks.events())
    got = step_losses(events)
    assert len(got) == STEPS - 1
    for a, b in zip(uninterrupted[1:], got, strict=True):
        assert math.isclose(a, b, rel_tol=REL_TOL), (uninterrupted, got)
    assert resumed.processes() == []
