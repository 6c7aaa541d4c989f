"""The ordered pool: results in submission order, a dead worker costs one item only."""

from __future__ import annotations

from stages.extract.pool import OrderedPool
from tests.extract.pool_jobs import crashed, square_or_die


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
