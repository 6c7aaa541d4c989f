"""Numbers printed exactly as OpenECAD's converter prints them.

OpenECAD writes every coordinate as ``np.array2string(value.round(4), separator=', ')``
(aligned columns, trailing dots, ``-0.`` kept, scientific notation when the magnitudes in one
vector differ by more than 1000x) and every angle through a table of ``np.pi`` fractions. Calling
numpy costs tens of microseconds per vector and a model has hundreds, so this module applies
numpy's rules in plain Python (tests compare it with numpy) and hands anything outside the
cases it covers back to numpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# numpy's array2string defaults that OpenECAD relies on.
_PRECISION = 8
_EXP_CUTOFF_MAX = 1e8
_EXP_CUTOFF_MIN = 1e-4
_EXP_CUTOFF_RATIO = 1000.0
_LINE_WIDTH = 75

# OpenECAD's ``number_to_pi_string``: angles within 1e-10 of one of these print as the text.
ANGLE_TOLERANCE = 1e-10
PI_FRACTIONS: tuple[tuple[float, str], ...] = (
    (math.pi, "np.pi"),
    (math.pi / 2, "np.pi/2"),
    (math.pi / 3, "np.pi/3"),
    (math.pi / 4, "np.pi/4"),
    (math.pi / 6, "np.pi/6"),
    (2 * math.pi, "2*np.pi"),
    (3 * math.pi / 2, "3*np.pi/2"),
    (3 * math.pi / 4, "3*np.pi/4"),
    (5 * math.pi / 6, "5*np.pi/6"),
    (5 * math.pi / 3, "5*np.pi/3"),
    (7 * math.pi / 6, "7*np.pi/6"),
    (4 * math.pi / 3, "4*np.pi/3"),
)


def np_round(value: float, decimals: int) -> float:
    """``np.round(value, decimals)``: scale, round half to even, unscale (not Python's exact
    decimal rounding, which differs on ties such as 2.675), keeping the sign of a zero."""
    if not math.isfinite(value):
        return value
    scale = 10.0**decimals
    scaled = value * scale
    rounded = float(round(scaled))
    if rounded == 0.0:
        rounded = math.copysign(0.0, scaled)
    return rounded / scale


def format_vector(values: Sequence[float]) -> str:
    """``np.array2string(np.array(values).round(4), separator=', ')``."""
    rounded = [np_round(float(v), 4) for v in values]
    cells = _format_cells(rounded)
    text = "[" + ", ".join(cells) + "]" if cells is not None else None
    if text is None or len(text) > _LINE_WIDTH:
        return np.array2string(np.array(values, dtype=np.float64).round(4), separator=", ")
    return text


def format_scalar(value: float) -> str:
    """``np.array2string(np.float64(value).round(4), separator=', ')``."""
    rounded = np_round(float(value), 4)
    cells = _format_cells([rounded])
    if cells is None:
        return np.array2string(np.float64(value).round(4), separator=", ")
    return cells[0]


def format_angle(angle: float) -> str:
    """OpenECAD's angle text: a ``np.pi`` fraction when one is within 1e-10, else the value
    rounded to 6 decimals as numpy's ``str`` prints a float64."""
    for value, text in PI_FRACTIONS:
        if abs(abs(angle) - value) < ANGLE_TOLERANCE:
            return text if angle > 0 else "-" + text
    return repr(np_round(angle, 6))


# -- numpy's FloatingFormat, for finite float64 values in the default print options -----------


def _format_cells(values: list[float]) -> list[str] | None:
    """Each value printed as one aligned cell, or None when numpy itself must do it."""
    if not all(math.isfinite(v) for v in values):
        return None
    magnitudes = [abs(v) for v in values if v != 0.0]
    exponential = bool(magnitudes) and (
        max(magnitudes) >= _EXP_CUTOFF_MAX
        or min(magnitudes) < _EXP_CUTOFF_MIN
        or max(magnitudes) / min(magnitudes) > _EXP_CUTOFF_RATIO
    )
    if exponential:
        return _scientific_cells(values)
    return _positional_cells(values)


def _positional_cells(values: list[float]) -> list[str] | None:
    parts = []
    for value in values:
        text = repr(value)
        if "e" in text:
            return None
        whole, fraction = text.split(".")
        fraction = fraction.rstrip("0")
        if len(fraction) > _PRECISION:
            return None
        parts.append((whole, fraction))
    pad_left = max(len(whole) for whole, _ in parts)
    pad_right = max(len(fraction) for _, fraction in parts)
    return [whole.rjust(pad_left) + "." + fraction.ljust(pad_right) for whole, fraction in parts]


def _scientific_cells(values: list[float]) -> list[str] | None:
    parts = []
    for value in values:
        digits, exponent = _shortest_digits(value)
        if len(digits) - 1 > _PRECISION:
            return None
        sign = "-" if math.copysign(1.0, value) < 0 else ""
        parts.append((sign + digits[0], digits[1:], exponent))
    precision = max(len(fraction) for _, fraction, _ in parts)
    exp_digits = max(2, max(len(str(abs(exponent))) for _, _, exponent in parts))
    pad_left = max(len(whole) for whole, _, _ in parts)
    cells = []
    for whole, fraction, exponent in parts:
        exp_sign = "-" if exponent < 0 else "+"
        cells.append(
            whole.rjust(pad_left)
            + "."
            + fraction.ljust(precision, "0")
            + "e"
            + exp_sign
            + str(abs(exponent)).zfill(exp_digits)
        )
    return cells


def _shortest_digits(value: float) -> tuple[str, int]:
    """The shortest round-tripping significant digits of ``value`` and its decimal exponent
    (``value == d.ddd * 10**exponent``), as Python's repr and numpy's dragon4 both find them."""
    if value == 0.0:
        return "0", 0
    text = repr(abs(value))
    if "e" in text:
        mantissa, exp_text = text.split("e")
        exponent = int(exp_text)
    else:
        mantissa, exponent = text, 0
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    exponent += len(whole) - 1
    stripped = digits.lstrip("0")
    exponent -= len(digits) - len(stripped)
    return stripped.rstrip("0") or "0", exponent
