"""Measurement helpers shared by the stage benchmarks: CPU time of finished child processes,
a sampler of a process tree's peak memory, and a stage run with ``--progress json`` read back
while its memory is sampled."""

from __future__ import annotations

import json
import resource
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]
MB = 1024 * 1024


def children_cpu_seconds() -> float:
    """CPU seconds (user + system) of every finished, waited-for child process; workers roll
    up into their stage once it reaped them."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class MemorySampler(threading.Thread):
    """Samples the memory of a process and its children until stopped: the largest RSS of
    the process and of any one child, and the whole tree summed as RSS (pages shared between
    forked processes counted in each). With ``pss``, the tree is also summed as PSS (shared
    pages split between them), which needs the slower full memory info."""

    def __init__(self, pid: int, interval: float = 0.1, pss: bool = False) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.interval = interval
        self.pss = pss
        self.stop = threading.Event()
        self.peak_main = 0
        self.peak_worker = 0
        self.peak_tree_rss = 0
        self.peak_tree_pss = 0

    def _memory(self, process: psutil.Process):
        return process.memory_full_info() if self.pss else process.memory_info()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                main = self._memory(self.process)
                children = []
                for child in self.process.children(recursive=True):
                    try:
                        children.append(self._memory(child))
                    except psutil.Error:
                        continue
            except psutil.Error:
                return
            self.peak_main = max(self.peak_main, main.rss)
            self.peak_worker = max(self.peak_worker, *(c.rss for c in children), 0)
            self.peak_tree_rss = max(self.peak_tree_rss, main.rss + sum(c.rss for c in children))
            if self.pss:
                tree_pss = main.pss + sum(c.pss for c in children)
                self.peak_tree_pss = max(self.peak_tree_pss, tree_pss)
            self.stop.wait(self.interval)


@dataclass(frozen=True, slots=True)
class StageRun:
    result: dict
    memory: MemorySampler
    seconds: float  # wall time
    cpu_seconds: float  # user + system time of the stage and all its workers


def run_sampled_stage(
    command: list[str], name: str, interval: float = 0.1, pss: bool = False
) -> StageRun:
    """Run a stage command that prints ``--progress json`` events, sampling its memory; exits
    the benchmark unless the stage completed. ``result`` is its result event."""
    cpu_before = children_cpu_seconds()
    started = time.monotonic()
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    sampler = MemorySampler(proc.pid, interval, pss)
    sampler.start()
    result: dict = {}
    done: dict = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "result":
            result = event
        elif event["event"] == "done":
            done = event
    proc.wait()
    seconds = time.monotonic() - started
    cpu_seconds = children_cpu_seconds() - cpu_before
    sampler.stop.set()
    sampler.join()
    if proc.returncode != 0 or done.get("status") != "completed":
        raise SystemExit(f"{name} failed (exit {proc.returncode}): {done}")
    return StageRun(result, sampler, seconds, cpu_seconds)
