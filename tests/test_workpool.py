"""The ordered pool: results in submission order, a dead worker costs one item only, and
nothing a dying worker leaves behind can hang the parent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from stages.workpool import OrderedPool, WorkerCrashed, parallel_map
from tests.conftest import REPO_ROOT
from tests.workpool_jobs import big_reply_then_die, crashed, fail_on_two, square_or_die


def test_results_come_back_in_order_across_batches() -> None:
    with OrderedPool(square_or_die, 2, crashed, chunk_size=3) as pool:
        first = pool.submit(range(0, 10))
        second = pool.submit(range(20, 30))
        assert list(first) == [(i, i * i) for i in range(0, 10)]
        assert list(second) == [(i, i * i) for i in range(20, 30)]


def test_a_later_batch_can_be_read_before_an_earlier_one_finishes() -> None:
    with OrderedPool(square_or_die, 2, crashed, chunk_size=2) as pool:
        first = pool.submit(range(0, 40))
        second = pool.submit(range(100, 104))
        assert [r for _, r in second] == [i * i for i in range(100, 104)]
        assert len(list(first)) == 40


def test_a_dead_worker_is_blamed_on_its_item_only() -> None:
    with OrderedPool(square_or_die, 2, crashed, chunk_size=4) as pool:
        results = dict(pool.submit(range(0, 30)))
        assert results[13] == -1
        assert all(results[i] == i * i for i in range(30) if i != 13)
        # The pool still works after the crash.
        assert list(pool.submit([3])) == [(3, 9)]


def test_cancelled_batch_is_not_read_and_the_next_one_still_runs() -> None:
    with OrderedPool(square_or_die, 2, crashed, chunk_size=2) as pool:
        first = pool.submit(range(0, 1000))
        iterator = iter(first)
        assert next(iterator) == (0, 0)
        first.cancel()
        assert list(pool.submit([5, 6])) == [(5, 25), (6, 36)]


def test_a_worker_dying_halfway_through_a_reply_costs_its_item_only() -> None:
    """The standard pools block forever on a truncated reply; this one must not."""
    with OrderedPool(big_reply_then_die, 2, lambda item, message: b"lost", chunk_size=1) as pool:
        results = dict(pool.submit([0, 1, 2, 3]))
    assert results == {0: b"\0", 1: b"lost", 2: b"\0", 3: b"\0"}


def test_without_a_crash_handler_a_dead_worker_is_an_error() -> None:
    with pytest.raises(WorkerCrashed, match="died"):
        list(parallel_map(square_or_die, range(10, 16), 2, chunksize=2))


def test_an_exception_in_the_work_is_raised_in_the_caller() -> None:
    with pytest.raises(ValueError, match="item 2 is bad"):
        list(parallel_map(fail_on_two, range(5), 2, chunksize=1))


@pytest.mark.timeout(60)  # a hang is the failure; how long closing takes is no concern here
def test_closing_after_the_workers_were_signalled_does_not_hang() -> None:
    """A cancel signals the whole process group: workers die wherever they are."""
    pool = OrderedPool(big_reply_then_die, 2, chunk_size=1)
    batch = iter(pool.submit(range(2, 1000)))
    next(batch)
    for worker in pool._workers:
        os.kill(worker.process.pid, signal.SIGTERM)
    pool.close()
    assert all(not w.process.is_alive() for w in pool._workers)


def test_idle_workers_leave_when_their_parent_is_killed(tmp_path: Path) -> None:
    """SIGKILL gives the parent no chance to stop its workers; they notice and leave."""
    script = (
        "from stages.workpool import OrderedPool\n"
        "from tests.workpool_jobs import square_or_die\n"
        "pool = OrderedPool(square_or_die, 2, chunk_size=1)\n"
        "assert list(pool.submit([1, 2, 3])) == [(1, 1), (2, 4), (3, 9)]\n"
        "print(' '.join(str(w.process.pid) for w in pool._workers), flush=True)\n"
        "import time; time.sleep(600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    pids = [int(pid) for pid in parent.stdout.readline().split()]
    assert len(pids) == 2
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie has left; init reaps it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.parametrize("after", [1, 7, 20, 45])
def test_a_cancelled_stage_ends_at_once_and_leaves_no_worker(after: int) -> None:
    """SIGTERM to the whole group, as the server cancels, at several points of a run."""
    stage = subprocess.Popen(
        [sys.executable, "-m", "tests.workpool_stage", "--progress", "json"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert stage.stdout is not None
    for line in stage.stdout:
        if json.loads(line).get("current", 0) >= after:
            break
    os.killpg(stage.pid, signal.SIGTERM)
    rest, _ = stage.communicate(timeout=60)
    assert stage.returncode == 130
    assert json.loads(rest.splitlines()[-1]) == {"event": "done", "status": "cancelled"}
    assert _group_members(stage.pid) == []


def _group_members(group: int) -> list[int]:
    members = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == group:
                members.append(process.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return members
