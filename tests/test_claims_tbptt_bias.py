"""Claims of "TBPTT(k1, k2) and the bias of truncation": each predicate holds in the chapter's
world and fails in a world where the claim is false (negative controls)."""

from __future__ import annotations

import numpy as np
import pytest

from bptt.claims import tbptt_bias as claims
from bptt.influence import InfluenceBalancing

PROBLEM = InfluenceBalancing(n_units=10, n_positive=3, steps=50, target=1.0)
WINDOWS = range(1, 13)


def test_two_parameter_gradient_reduces_to_the_one_parameter_problem():
    for tau in (None, 3, 7):
        g = claims.two_parameter_gradient(PROBLEM, [0.3, 0.3], tau)
        assert g.sum() == pytest.approx(PROBLEM.gradient(0.3, tau), rel=1e-12)
    with pytest.raises(ValueError, match="theta"):
        claims.two_parameter_gradient(PROBLEM, [0.3], None)
    with pytest.raises(TypeError, match="problem"):
        claims.two_parameter_gradient("p", [0.3, 0.3], None)


def test_loop_integral_is_exact_for_affine_fields():
    rotation = lambda th: np.array([-th[1], th[0]])  # curl 2: work 2 x area = 8 on [-1, 1]^2
    assert claims.loop_integral(rotation, [0, 0], 1.0) == pytest.approx(8.0)
    assert claims.loop_integral(lambda th: 2 * th, [0.5, -1], 2.0) == pytest.approx(0.0, abs=1e-12)


def test_truncated_field_is_not_a_gradient():
    for tau in (3, 5, 7):
        field = lambda th, tau=tau: claims.two_parameter_gradient(PROBLEM, th, tau)
        assert claims.is_not_a_gradient(field, [0, 0], 1.0).holds


@pytest.mark.negative_control
def test_negative_control_full_gradient_is_a_gradient():
    """The full gradient is the gradient of L: the loop-integral predicate must fail on it."""
    field = lambda th: claims.two_parameter_gradient(PROBLEM, th, None)
    assert not claims.is_not_a_gradient(field, [0, 0], 1.0).holds
    assert not claims.is_not_a_gradient(lambda th: np.array([th[0], 3 * th[1]]), [1, 1], 0.5).holds


def test_wrong_sign_gradient_is_a_concave_quadratic_derivative():
    for tau in (1, 3, 5):
        assert claims.is_concave_quadratic_derivative(lambda t, tau=tau: PROBLEM.gradient(t, tau)).holds


@pytest.mark.negative_control
def test_negative_control_full_and_nonaffine_gradients_are_not_concave_quadratic():
    assert not claims.is_concave_quadratic_derivative(PROBLEM.gradient).holds  # convex
    assert not claims.is_concave_quadratic_derivative(lambda t: -t**3).holds  # not affine
    with pytest.raises(ValueError, match="probes"):
        claims.is_concave_quadratic_derivative(PROBLEM.gradient, probes=(0, 1, 3))


def test_wrong_sign_exactly_up_to_2p_minus_1():
    result = claims.wrong_sign_up_to(PROBLEM, 5, WINDOWS)
    assert result.holds and result.windows == [1, 2, 3, 4, 5]


@pytest.mark.negative_control
def test_negative_control_wrong_sign_fails_where_truncation_keeps_the_sign():
    """All units pushed the same way: truncation never gets the sign wrong."""
    same_sign = InfluenceBalancing(n_units=10, n_positive=0, steps=50, target=1.0)
    assert claims.wrong_sign_windows(same_sign, WINDOWS) == []
    assert not claims.wrong_sign_up_to(same_sign, 5, WINDOWS).holds
    assert not claims.wrong_sign_up_to(PROBLEM, 3, WINDOWS).holds  # the old, too-short claim


def test_seed_predicates():
    table = claims.seed_table({"a": [1.0, 2.0], "b": [0.5, 0.4]}, criterion=1.5)
    assert table.successes == {"a": 1, "b": 2}
    assert claims.never_learns([2.05, 2.1], 2.08)
    assert claims.beats_on_every_seed([1.1, 1.2], [1.4, 1.5])
    with pytest.raises(ValueError, match="better, worse"):
        claims.beats_on_every_seed([1.0], [1.0, 2.0])


@pytest.mark.negative_control
def test_negative_control_seed_predicates_fail_when_one_seed_disagrees():
    assert not claims.never_learns([2.05, 1.2], 2.08)  # one seed learned
    assert not claims.beats_on_every_seed([1.1, 1.6], [1.4, 1.5])  # one seed lost
