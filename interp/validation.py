"""The shared validators: scikit-learn's `check_array` idea for grokscope's inputs. Each takes where the
value was passed (`where`: the function or config), the input's name and the value, and returns the
value (converted: an int, a float) or raises a `SpecError` that names what was passed, what is expected
and, when given, the fix:

    steps = check_int("TrainConfig", "steps", steps, min_value=1)
    lr = check_number("TrainConfig", "lr", lr, min_value=0, inclusive=False, fix="Try 1e-3.")
    kind = check_choice("ablate", "kind", kind, ("zero", "mean", "resample"))

One place decides what counts as an int (not a bool), a finite number, a probability; the callers
state only the bounds.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection

from interp.errors import SpecError

__all__ = ["check_choice", "check_fraction", "check_int", "check_number", "check_type"]


def check_choice(where: str, name: str, value, choices: Collection, fix: str | None = None):
    """`value` if it is one of `choices`, else a SpecError listing them."""
    try:
        ok = value in choices
    except TypeError:  # an unhashable value against a set
        ok = False
    if not ok:
        raise SpecError(where, name, value, f"one of {list(choices)}", fix)
    return value


def check_int(
    where: str,
    name: str,
    value,
    *,
    min_value: int | None = None,
    max_value: int | None = None,
    expected: str | None = None,
    fix: str | None = None,
) -> int:
    """`value` as an int (an integral number, not a bool) within [min_value, max_value]. `expected`
    replaces the generic description ("a positive int") where the input has a meaning worth saying."""
    expected = expected or _int_expectation(min_value, max_value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise SpecError(where, name, value, expected, fix)
    value = int(value)
    if (min_value is not None and value < min_value) or (max_value is not None and value > max_value):
        raise SpecError(where, name, value, expected, fix)
    return value


def check_number(
    where: str,
    name: str,
    value,
    *,
    min_value: float | None = None,
    max_value: float | None = None,
    inclusive: bool | tuple[bool, bool] = True,
    finite: bool = True,
    expected: str | None = None,
    fix: str | None = None,
) -> float:
    """`value` as a float (a real number, not a bool), finite unless `finite=False`, within the bounds
    (`inclusive`: both ends, or (low, high) separately). `expected` replaces the generic description."""
    low_in, high_in = (inclusive, inclusive) if isinstance(inclusive, bool) else inclusive
    expected = expected or _number_expectation(min_value, max_value, low_in, high_in, finite)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SpecError(where, name, value, expected, fix)
    value = float(value)
    if math.isnan(value) or (finite and math.isinf(value)):
        raise SpecError(where, name, value, expected, fix)
    if min_value is not None and (value < min_value or (not low_in and value == min_value)):
        raise SpecError(where, name, value, expected, fix)
    if max_value is not None and (value > max_value or (not high_in and value == max_value)):
        raise SpecError(where, name, value, expected, fix)
    return value


def check_fraction(
    where: str,
    name: str,
    value,
    *,
    inclusive: bool | tuple[bool, bool] = True,
    expected: str | None = None,
    fix: str | None = None,
) -> float:
    """`value` as a float in [0, 1] (`inclusive` as for `check_number`, e.g. (True, False) for [0, 1))."""
    return check_number(
        where, name, value, min_value=0.0, max_value=1.0, inclusive=inclusive, expected=expected, fix=fix
    )


def check_type(where: str, name: str, value, types, expected: str, fix: str | None = None):
    """`value` if it is an instance of `types`, else a SpecError saying what was expected (by its name)."""
    if not isinstance(value, types):
        raise SpecError(where, name, type(value).__name__, expected, fix)
    return value


def _int_expectation(lo, hi) -> str:
    if lo is not None and hi is not None:
        return f"an int in [{lo}, {hi}]"
    if lo == 1:
        return "a positive int"
    if lo == 0:
        return "a non-negative int"
    if lo is not None:
        return f"an int >= {lo}"
    if hi is not None:
        return f"an int <= {hi}"
    return "an int"


def _number_expectation(lo, hi, low_in, high_in, finite) -> str:
    tail = "" if finite else " (or infinity)"
    if lo is not None and hi is not None:
        return f"a number in {'[' if low_in else '('}{lo:g}, {hi:g}{']' if high_in else ')'}{tail}"
    if lo == 0:
        return ("a positive" if not low_in else "a non-negative") + f" number{tail}"
    if lo is not None:
        return f"a number {'>=' if low_in else '>'} {lo:g}{tail}"
    if hi is not None:
        return f"a number {'<=' if high_in else '<'} {hi:g}{tail}"
    return "a finite number" if finite else "a number"
