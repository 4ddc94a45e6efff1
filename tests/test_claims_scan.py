"""Negative controls of the claims of the associative-scan chapter (bptt.claims.scan)."""

from __future__ import annotations

import numpy as np
import pytest

from bptt import jacobians, rnn, scan, spectral
from bptt.claims import scan as claims


def test_scan_matches_and_a_wrong_operator_does_not():
    rng = np.random.default_rng(0)
    lam, u = rng.uniform(-1, 1, (2, 33, 3)), rng.standard_normal((2, 33, 3))
    h_loop = scan.sequential(lam, u)
    assert claims.matches_sequential(scan.scan(lam, u)[0], h_loop).holds


@pytest.mark.negative_control
def test_scan_with_the_operands_swapped_fails():
    # the world where the order of composition does not matter: it does, and the claim catches it
    rng = np.random.default_rng(0)
    lam, u = rng.uniform(-1, 1, (2, 33, 3)), rng.standard_normal((2, 33, 3))
    h_loop = scan.sequential(lam, u)
    original = scan.combine
    try:
        scan.combine = lambda l1, u1, l2, u2: original(l2, u2, l1, u1)
        wrong, _ = scan.blelloch_scan(lam, u)
    finally:
        scan.combine = original
    assert not claims.matches_sequential(wrong, h_loop).holds


@pytest.mark.negative_control
def test_sequential_rounds_are_not_logarithmic():
    steps = [2, 16, 1000, 1024]
    assert claims.logarithmic_rounds(steps, [scan.counts(t).rounds_per_sweep for t in steps]).holds
    assert not claims.logarithmic_rounds(steps, [scan.counts(t, "sequential").rounds_per_sweep
                                                 for t in steps]).holds


def _norms(radius_linear, seeds=3, hidden=16, steps=320):
    lin, tan = [], []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        W_hh = spectral.orthogonal(hidden, rng=rng, gain=0.99)
        x = rng.standard_normal((1, steps, 1))
        h, _ = rnn.forward(x, None, rng.standard_normal((hidden, 1)), W_hh, np.zeros(hidden))
        g = rng.standard_normal((1, hidden))
        tan.append(jacobians.gradient_norms_by_distance(jacobians.step_jacobians(h, W_hh), g)[0])
        J = np.broadcast_to(np.diag(np.full(hidden, radius_linear)), (1, steps, hidden, hidden))
        lin.append(jacobians.gradient_norms_by_distance(np.ascontiguousarray(J), g)[0])
    return np.array(lin), np.array(tan)


@pytest.mark.negative_control
def test_carries_gradient_fails_when_lambda_is_far_from_one():
    assert claims.carries_gradient(*_norms(0.995), 300).holds
    assert not claims.carries_gradient(*_norms(0.9), 300).holds  # 0.9^300 ~ 2e-14


def _readout_errors(lags):
    rng = np.random.default_rng(1)
    lam = np.linspace(0.0, 0.9, 10)
    out = []
    for _ in range(2):
        x, y = scan.delayed_product(3000, 48, lags, rng=rng)
        h, _ = scan.scan(np.broadcast_to(lam, (len(y), 48, 10)).copy(), np.repeat(x, 10, axis=2))
        out.append((h[:, -1], y))
    train, test = out
    mean = float(np.mean((test[1] - train[1].mean()) ** 2))
    return scan.readout_mse(train, test, 1), mean, scan.readout_mse(train, test, 2)


@pytest.mark.negative_control
def test_linear_no_better_than_mean_fails_on_a_linear_target():
    assert claims.linear_no_better_than_mean(*_readout_errors((2, 5))).holds
    # y = x_{T-3} is linear in the inputs: the linear read-out beats the mean by far
    assert not claims.linear_no_better_than_mean(*_readout_errors((3,))).holds
    # a nonlinear read-out that does not beat the mean either makes the claim false too
    assert not claims.linear_no_better_than_mean(1.0, 1.0, 0.9).holds
