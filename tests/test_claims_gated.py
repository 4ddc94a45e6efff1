"""The predicates of the chapter *Gated architectures*: each holds in a world where its claim is
true and fails (negative control) in one where it is false."""

from __future__ import annotations

import numpy as np
import pytest

from bptt import tasks
from bptt.claims import gated


def test_memoryless_mse_formula_matches_simulation():
    x, y = tasks.adding_problem(200_000, 10, seed=0)
    mse = np.mean((gated.adding_memoryless_predict(x) - y) ** 2)
    assert abs(mse - gated.adding_memoryless_mse(10)) < 2e-3
    assert gated.adding_memoryless_mse(10) < tasks.ADDING_BASELINE_MSE


@pytest.mark.negative_control
def test_memoryless_predictor_is_not_an_oracle():
    """A predictor that used the first marked value would beat the formula: ours must not."""
    x, y = tasks.adding_problem(50_000, 10, seed=1)
    assert np.mean((gated.adding_memoryless_predict(x) - y) ** 2) > 0.9 * gated.adding_memoryless_mse(10)


def test_success_and_baseline_predicates():
    baseline = gated.adding_memoryless_mse(20)
    assert gated.successes([0.001, 0.002], 0.1 * baseline)
    assert gated.beats_baseline_on_most([0.001, 0.002, 0.003, 0.001, 0.2], baseline, factor=0.1)
    assert gated.fails_on_most([0.16, 0.17, 0.15, 0.16, 0.001], baseline, factor=0.5)


@pytest.mark.negative_control
def test_success_and_baseline_predicates_fail_when_false():
    baseline = gated.adding_memoryless_mse(20)
    assert not gated.successes([0.001, 0.1], 0.1 * baseline)
    assert not gated.successes([np.nan, 0.001], 0.1 * baseline)
    # a cell on the baseline (the tanh RNN's world) does not "beat it on most seeds"
    assert not gated.beats_baseline_on_most([0.16, 0.15, 0.001, 0.16, 0.17], baseline, factor=0.1)
    # a cell that learns does not "fail on most seeds"
    assert not gated.fails_on_most([0.001, 0.002, 0.16, 0.001, 0.003], baseline, factor=0.5)


def test_gates_opened():
    assert gated.gates_opened([0.5, 0.52, 0.49], [0.8, 0.9, 0.7])


@pytest.mark.negative_control
def test_gates_opened_fails_when_a_gate_closes():
    assert not gated.gates_opened([0.5, 0.52, 0.49], [0.8, 0.5, 0.7])
    assert not gated.gates_opened([0.5, 0.5], [0.51, 0.6], margin=0.05)


def test_lower_bound_not_law():
    gate = [0.05, 0.5, 0.95]
    assert gated.gate_rate_is_lower_bound([0.2, 0.62, 0.99], gate)


@pytest.mark.negative_control
def test_lower_bound_fails_for_a_law_or_a_violation():
    gate = [0.05, 0.5, 0.95]
    # the curve below the bound somewhere: not a lower bound
    assert not gated.gate_rate_is_lower_bound([0.2, 0.4, 0.99], gate)
    # the curve on the law everywhere: a law, not just a bound
    assert not gated.gate_rate_is_lower_bound([0.051, 0.5, 0.95], gate)


def test_grows_with_length():
    assert gated.grows_with_length([5, 10, 20], [[100, 150], [200, 250], [300, np.nan]], cap=1000)
    assert gated.per_step_rate(0.5 ** np.arange(10), 2, 6) == pytest.approx(0.5)


@pytest.mark.negative_control
def test_grows_with_length_fails_when_flat():
    assert not gated.grows_with_length([5, 10, 20], [[100, 150], [100, 150], [300, 300]], cap=1000)
    assert not gated.grows_with_length([20, 10], [[100, 100], [200, 200]], cap=1000)
    with pytest.raises(ValueError, match="updates_needed"):
        gated.grows_with_length([5, 10], [1, 2], cap=10)


@pytest.mark.negative_control
def test_relative_error_below():
    assert gated.relative_error_below(1e-13, 1e-10)
    assert not gated.relative_error_below(1e-3, 1e-10)
    assert not gated.relative_error_below(np.nan, 1e-10)
