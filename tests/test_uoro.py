"""bptt.uoro against RTRL, bptt.rtrl.operation_counts, and the online influence-balancing task."""

from __future__ import annotations

import numpy as np
import pytest

from bptt import influence, rnn, rtrl, uoro


def _problem(seed=0, T=12, D=2, H=3):
    rng = np.random.default_rng(seed)
    p = rnn.init_params(D, H, 1, rng=rng)
    return rng.standard_normal((1, T, D)), None, p["W_xh"], p["W_hh"], p["b"], rng.standard_normal((1, T, H))


def test_uoro_step_is_unbiased_in_one_step():
    # E over nu of s~' theta~'^T = J s~ theta~^T + F: enumerate all sign vectors exactly
    rng = np.random.default_rng(1)
    H, P = 3, 4
    J, F = rng.standard_normal((H, H)), rng.standard_normal((H, P))
    s, th = rng.standard_normal(H), rng.standard_normal(P)
    signs = np.array([[1 - 2 * ((i >> j) & 1) for j in range(H)] for i in range(2**H)], float)
    n = len(signs)
    s_new, th_new = uoro.uoro_step(np.tile(s, (n, 1)), np.tile(th, (n, 1)),
                                   np.tile(J @ s, (n, 1)), signs @ F, signs)
    expectation = np.einsum("ni,np->ip", s_new, th_new) / n
    np.testing.assert_allclose(expectation, np.outer(J @ s, th) + F, rtol=1e-12, atol=1e-12)


def test_uoro_mean_matches_rtrl():
    args = _problem()
    exact = uoro.flatten(rtrl.gradients(*args))
    est = uoro.flatten(uoro.rnn_gradient_estimates(*args, 20000, rng=3))
    z = (est.mean(0) - exact) / (est.std(0) / np.sqrt(len(est)))
    assert np.abs(z).max() < 5 and 0.3 < np.mean(z**2) < 3


def test_rtrl_counts():
    c = rtrl.operation_counts(10, 3)
    assert c["parameters"] == 10 * 3 + 100 + 10
    assert c["rtrl_time"] == 10**4 + 4 * 10**3 and c["rtrl_memory"] == 10**3 + 4 * 10**2
    with pytest.raises(ValueError, match="hidden"):
        rtrl.operation_counts(0, 3)


def test_online_influence_balancing_numbers():
    p = influence.OnlineInfluenceBalancing()
    assert p.true_sensitivity() == pytest.approx(-6.0, abs=1e-12)
    assert p.optimum() == pytest.approx(-1 / 6)
    assert p.first_right("window") == 41 and p.first_right("chunked") == 110
    # the sum of all paths is the fixed-point sensitivity
    assert p.path_sensitivities(2000).sum() == pytest.approx(-6.0, abs=1e-9)
    with pytest.raises(ValueError, match="n_positive"):
        influence.OnlineInfluenceBalancing(n_positive=30)


def test_online_train_rtrl_converges_and_short_window_diverges():
    p = influence.OnlineInfluenceBalancing()
    good = influence.online_train(p, "rtrl", lr=1e-5, steps=12000)
    bad = influence.online_train(p, "window", tau=10, lr=1e-5, steps=12000)
    assert abs(good.theta[-1, 0] - p.optimum()) < abs(good.theta[0, 0] - p.optimum())
    assert abs(bad.theta[-1, 0]) > 10 * abs(p.optimum())
    with pytest.raises(ValueError, match="method"):
        influence.online_train(p, "nope", lr=1e-5, steps=10)
