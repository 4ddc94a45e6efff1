"""The predicates of the chapter *Other stabilizers*, with negative controls."""

from __future__ import annotations

import pytest

from bptt.claims import stabilizers as claims

FLOW = {"default": 2.6e-8, "orthogonal": 0.0079, "IRNN": 0.56}


def test_flow_ordering_and_omega():
    assert claims.flow_ordering(FLOW)
    assert claims.omega_ranks_flow({"default": 6.1, "orthogonal": 0.78, "IRNN": 0.08}, FLOW)
    assert claims.slope_scale_invariant(0.58, 0.59)
    assert claims.solved([0.01, 0.2], 0.5 * 1.386)


@pytest.mark.negative_control
def test_predicates_fail_when_false():
    # the default initialisation passing as much gradient as the orthogonal one
    assert not claims.flow_ordering({**FLOW, "default": 0.005})
    # Omega ranking the networks against the flow
    assert not claims.omega_ranks_flow({"default": 0.5, "orthogonal": 0.78, "IRNN": 0.08}, FLOW)
    # the default cell's slope collapsing with 10x inputs (0.90 -> 0.26)
    assert not claims.slope_scale_invariant(0.90, 0.26)
    assert not claims.solved([0.01, 1.2], 0.5 * 1.386)


def test_penalty_keeps_gradient():
    assert claims.penalty_keeps_gradient([4.6, 6.1, 7.0], [0.06, 0.04, 0.04], [1.7, 1.6, 1.8])


@pytest.mark.negative_control
def test_penalty_claim_fails_for_plain_runs():
    # comparing plain runs with themselves: Omega not smaller, the gradient tiny on some seeds
    assert not claims.penalty_keeps_gradient([4.6, 6.1, 7.0], [4.6, 6.1, 7.0], [1.6e-5, 0.82, 1.6e-7])
    assert not claims.penalty_keeps_gradient([4.6, 6.1], [0.06, 0.04], [1.7, 0.01])
