"""The plain-Python number printing must agree with numpy's array2string digit for digit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stages.cad.openecad.numbers import format_angle, format_scalar, format_vector, np_round

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)
grid = st.integers(min_value=-(10**9), max_value=10**9).map(lambda n: n / 10**4)
tiny = st.floats(min_value=-0.01, max_value=0.01, allow_nan=False)
zeros = st.sampled_from([0.0, -0.0, 1e-5, -4e-5, 5e-5, -5e-5])
values = st.one_of(finite, grid, tiny, zeros, st.integers(-5000, 5000).map(float))


def numpy_vector(vector: list[float]) -> str:
    return np.array2string(np.array(vector, dtype=np.float64).round(4), separator=", ")


@settings(max_examples=800, deadline=None)
@given(st.lists(values, min_size=1, max_size=3))
def test_vectors_print_as_numpy_prints_them(vector: list[float]) -> None:
    assert format_vector(vector) == numpy_vector(vector)


@settings(max_examples=500, deadline=None)
@given(values)
def test_scalars_print_as_numpy_prints_them(value: float) -> None:
    assert format_scalar(value) == np.array2string(np.float64(value).round(4), separator=", ")


@settings(max_examples=500, deadline=None)
@given(values, st.integers(min_value=0, max_value=8))
def test_rounding_is_numpys_including_ties_and_zero_signs(value: float, decimals: int) -> None:
    expected = float(np.round(np.float64(value), decimals))
    got = np_round(value, decimals)
    assert got == expected
    assert math.copysign(1.0, got) == math.copysign(1.0, expected)


@pytest.mark.parametrize(
    ("vector", "text"),
    [
        ([0.0, -1.0, 0.0], "[ 0., -1.,  0.]"),
        ([-9.525, 9.525], "[-9.525,  9.525]"),
        ([0.0, -1.2582], "[ 0.    , -1.2582]"),
        ([1.0, 0.0, -6e-17], "[ 1.,  0., -0.]"),
        ([0.0001, 0.5], "[1.e-04, 5.e-01]"),
    ],
)
def test_documented_examples(vector: list[float], text: str) -> None:
    assert format_vector(vector) == text


@pytest.mark.parametrize(
    ("angle", "text"),
    [
        (math.pi / 2, "np.pi/2"),
        (-math.pi, "-np.pi"),
        (3 * math.pi / 4, "3*np.pi/4"),
        (-math.pi / 6 + 1e-12, "-np.pi/6"),
        (2 * math.pi / 3, "2.094395"),
        (0.1234567, "0.123457"),
        (-2e-7, "-0.0"),
    ],
)
def test_angles_use_openecads_pi_table(angle: float, text: str) -> None:
    assert format_angle(angle) == text
