"""Negative controls of the claims of the online-gradients chapter (bptt.claims.online)."""

from __future__ import annotations

import numpy as np
import pytest

from bptt import influence, rnn, rtrl, uoro
from bptt.claims import online as claims


@pytest.mark.negative_control
def test_leading_power_excludes_the_neighbours():
    count = lambda H: rtrl.operation_counts(H, 3)["rtrl_time"]
    assert claims.leading_power(count, 4).holds
    assert not claims.leading_power(count, 3).holds
    assert not claims.leading_power(lambda H: rtrl.operation_counts(H, 3)["bptt_time"], 4).holds


@pytest.mark.negative_control
def test_unbiased_fails_without_random_signs():
    rng = np.random.default_rng(0)
    p = rnn.init_params(2, 3, 1, rng=rng)
    args = (rng.standard_normal((1, 10, 2)), None, p["W_xh"], p["W_hh"], p["b"], rng.standard_normal((1, 10, 3)))
    exact = uoro.flatten(rtrl.gradients(*args))
    sizes = (100, 1000, 10000)
    good = uoro.flatten(uoro.rnn_gradient_estimates(*args, 10000, rng=1))
    assert claims.unbiased(good, exact, sizes).holds
    biased = uoro.flatten(uoro.rnn_gradient_estimates(*args, 10000, rng=1, signs="ones"))
    assert not claims.unbiased(biased, exact, sizes).holds


@pytest.mark.negative_control
def test_smaller_fails_when_reversed():
    assert claims.smaller(1.0, 2.0).holds
    assert not claims.smaller(2.0, 1.0).holds


@pytest.mark.negative_control
def test_first_right_sign_fails_when_the_positive_units_dominate():
    p = influence.OnlineInfluenceBalancing()
    windows = np.cumsum(p.path_sensitivities(200))
    assert claims.first_right_sign(windows, p.true_sensitivity(), 41).holds
    # 13 positive, 10 negative units: the short paths agree with the total, no window is wrong
    q = influence.OnlineInfluenceBalancing(n_positive=13)
    assert not claims.first_right_sign(np.cumsum(q.path_sensitivities(200)), q.true_sensitivity(), 41).holds


@pytest.mark.negative_control
def test_converges_and_diverges_fail_on_the_other_method():
    p = influence.OnlineInfluenceBalancing()
    star = p.optimum()
    good = influence.online_train(p, "rtrl", lr=1e-5, steps=12000).theta[-1]
    bad = influence.online_train(p, "window", tau=10, lr=1e-5, steps=12000).theta[-1]
    assert claims.converges(good, star).holds and claims.diverges(bad, star).holds
    assert not claims.converges(bad, star).holds
    assert not claims.diverges(good, star).holds
