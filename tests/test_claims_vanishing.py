"""Claim predicates of the vanishing-gradient and eigenvalue chapters, with negative controls."""

from __future__ import annotations

import numpy as np
import pytest

from bptt.claims import vanishing as claims


def _powers(W, K=120):
    return np.array([np.linalg.norm(np.linalg.matrix_power(W, k), 2) for k in range(K + 1)])


def test_geometric_decay_holds_for_a_geometric_sequence():
    d = np.arange(3, 31, 3)
    result = claims.geometric_decay(d, 0.8**d, max_factor=0.9)
    assert result.holds and abs(result.factor - 0.8) < 1e-9


@pytest.mark.negative_control
def test_geometric_decay_fails_without_decay():
    d = np.arange(3, 31, 3)
    assert not claims.geometric_decay(d, np.ones(d.size)).holds  # a share that does not fall
    assert not claims.geometric_decay(d, 0.97**d, max_factor=0.9).holds  # too slow a decay
    bumpy = 0.8**d
    bumpy[4] *= 10
    assert not claims.geometric_decay(d, bumpy).holds  # not falling at every step


def test_transient_growth_holds_for_the_jordan_block():
    W = np.array([[0.9, 5.0], [0.0, 0.9]])
    s = np.linalg.svd(W, compute_uv=False)[0]
    result = claims.transient_growth(_powers(W), 0.9, s)
    assert result.holds and result.peak_power == 9


@pytest.mark.negative_control
def test_transient_growth_fails_for_a_normal_matrix_and_a_wrong_bound():
    W = np.diag([0.9, 0.5])  # normal: ||W^k|| = 0.9^k, no hump
    assert not claims.transient_growth(_powers(W), 0.9, 0.9).holds
    J = np.array([[0.9, 5.0], [0.0, 0.9]])
    assert not claims.transient_growth(_powers(J), 0.9, 2.0).holds  # sigma too small: bound broken


def test_validation():
    with pytest.raises(ValueError, match="distances"):
        claims.geometric_decay([1, 1], [0.5, 0.2])
    with pytest.raises(ValueError, match="values"):
        claims.geometric_decay([1, 2], [0.5, 0.0])
    with pytest.raises(ValueError, match="power_norms"):
        claims.transient_growth([1.0], 0.9, 1.0)
