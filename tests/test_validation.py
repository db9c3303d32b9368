"""The shared validators: what they accept, what they refuse, and the message a refusal carries."""

from __future__ import annotations

import math

import numpy as np
import pytest

from interp.errors import SpecError
from interp.validation import check_choice, check_fraction, check_int, check_number, check_type


def test_check_int_takes_integral_numbers_and_refuses_bools_floats_and_out_of_range_values():
    assert check_int("Cfg", "steps", 3, min_value=0) == 3
    assert check_int("Cfg", "steps", np.int64(7), min_value=1) == 7 and type(check_int("Cfg", "n", np.int64(7))) is int
    for bad in (True, 2.0, "3", None, -1):
        with pytest.raises(SpecError, match=r"Cfg\.steps=.* is not allowed: expected a non-negative int"):
            check_int("Cfg", "steps", bad, min_value=0)
    with pytest.raises(SpecError, match=r"expected an int in \[1, 5\]\. Try 3\."):
        check_int("Cfg", "k", 6, min_value=1, max_value=5, fix="Try 3.")
    with pytest.raises(SpecError, match=r"expected the number of layers"):
        check_int("Cfg", "n_layers", 0, min_value=1, expected="the number of layers")


def test_check_number_refuses_nan_infinity_bools_and_respects_open_and_closed_ends():
    assert check_number("Cfg", "lr", 1e-3, min_value=0, inclusive=False) == 1e-3
    assert check_number("Cfg", "x", math.inf, finite=False) == math.inf
    for bad in (0.0, -1.0, math.nan, math.inf, True, "1e-3", None):
        with pytest.raises(SpecError, match=r"Cfg\.lr=.*expected a positive number"):
            check_number("Cfg", "lr", bad, min_value=0, inclusive=False)
    assert check_number("Cfg", "wd", 0, min_value=0) == 0.0
    with pytest.raises(SpecError, match=r"expected a number in \[0, 1\)"):
        check_number("Cfg", "noise", 1.0, min_value=0, max_value=1, inclusive=(True, False))


def test_check_fraction_and_check_choice_and_check_type():
    assert check_fraction("Spec", "frac", 0.5) == 0.5
    with pytest.raises(SpecError, match=r"Spec\.noise=1\.0 .*\[0, 1\)"):
        check_fraction("Spec", "noise", 1.0, inclusive=(True, False))
    assert check_choice("ablate", "kind", "mean", ("zero", "mean")) == "mean"
    with pytest.raises(SpecError, match=r"ablate\.kind='max' .*one of \['zero', 'mean'\]"):
        check_choice("ablate", "kind", "max", ("zero", "mean"))
    with pytest.raises(SpecError, match=r"one of"):
        check_choice("ablate", "kind", ["unhashable"], {"zero", "mean"})
    with pytest.raises(SpecError, match=r"train\.task='list' .*expected a Task or TaskSpec"):
        check_type("train", "task", [], (int,), "a Task or TaskSpec")
