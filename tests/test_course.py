"""The chapter preamble's glue: what a notebook records for the book's prose."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bptt.course import GLUE_DIGITS, glued_value


@pytest.mark.parametrize(
    ("value", "recorded"),
    [
        (0.5128752628358597, 0.5129),
        (0.5128755840000000, 0.5129),  # the same run on another CPU: the same record
        (np.float32(2.1208), 2.121),
        (np.float64(-6.0), -6.0),
        (3.4999e-16, 3.5e-16),
        (12345.678, 12350.0),
    ],
)
def test_real_numbers_keep_the_digits_prose_shows(value, recorded):
    assert glued_value(value) == recorded and type(glued_value(value)) is float


@pytest.mark.parametrize("value", [2948, True, np.int64(7), "5-gram", None])
def test_everything_else_is_recorded_unchanged(value):
    assert glued_value(value) is value


def test_non_finite_numbers_are_unchanged():
    assert math.isnan(glued_value(float("nan"))) and glued_value(float("inf")) == float("inf")


def test_digits_beyond_the_record_are_dropped():
    assert glued_value(0.123456789) != 0.123456789
    assert f"{glued_value(0.123456789):.{GLUE_DIGITS}g}" == "0.1235"
