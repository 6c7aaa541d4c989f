"""Deterministic split assignment and sample order."""

from __future__ import annotations

from itertools import islice

from hypothesis import given
from hypothesis import strategies as st

from stages.extract.sampling import (
    TRAIN,
    VALIDATION,
    hashed_split,
    interleaved_splits,
    seeded_order,
    unique_in_order,
)

IDS = [f"{i:08d}" for i in range(200)]


def test_seeded_order_is_a_permutation_fixed_by_seed_and_split() -> None:
    order = seeded_order(IDS, 7, TRAIN)
    assert sorted(order) == IDS
    assert order == seeded_order(IDS, 7, TRAIN)
    assert order != seeded_order(IDS, 8, TRAIN)
    assert order != seeded_order(IDS, 7, VALIDATION)


def test_hashed_split_depends_on_the_id_alone() -> None:
    labels = [hashed_split(i) for i in IDS]
    assert labels == [hashed_split(i) for i in IDS]
    share = labels.count(VALIDATION) / len(labels)
    assert 0.03 < share < 0.2, share
    # Adding other ids never moves an existing one.
    assert [hashed_split(i) for i in IDS[:50]] == labels[:50]


@given(st.integers(1, 300), st.integers(1, 300), st.integers(0, 200))
def test_interleaved_prefix_has_exact_sizes(train: int, val: int, extra: int) -> None:
    labels = list(islice(interleaved_splits(train, val), train + val))
    assert labels.count(TRAIN) == train
    assert labels.count(VALIDATION) == val
    longer = list(islice(interleaved_splits(train, val), train + val + extra))
    assert longer[: train + val] == labels


def test_unique_in_order_keeps_first_occurrence() -> None:
    assert unique_in_order(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]
