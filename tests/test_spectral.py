"""bptt.spectral: spectra, power iteration and its rate, scaling, orthogonal init, vanishing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bptt import jacobians, spectral


def symmetric_with(eigenvalues, seed=0):
    q = spectral.orthogonal(len(eigenvalues), rng=seed)
    return q @ np.diag(eigenvalues) @ q.T, q


@given(st.integers(1, 6), st.integers(0, 999))
def test_eigen_and_singular_values_are_ordered_and_correct(n, seed):
    M = np.random.default_rng(seed).standard_normal((n, n))
    values = spectral.eigenvalues(M)
    assert np.all(np.diff(np.abs(values)) <= 1e-12)
    np.testing.assert_allclose(np.sort_complex(values), np.sort_complex(np.linalg.eigvals(M)))
    sv = spectral.singular_values(M)
    assert np.all(np.diff(sv) <= 0)
    assert spectral.spectral_radius(M) == pytest.approx(np.abs(values).max())
    assert spectral.spectral_norm(M) == pytest.approx(np.linalg.norm(M, 2))
    assert spectral.spectral_radius(M) <= spectral.spectral_norm(M) * (1 + 1e-12)


def test_singular_values_of_a_rectangular_matrix():
    M = np.array([[3.0, 0.0, 0.0], [0.0, 0.0, -2.0]])
    np.testing.assert_allclose(spectral.singular_values(M), [3.0, 2.0])


def test_powers_of_a_symmetric_matrix_have_powered_eigenvalues():
    M, _ = symmetric_with([1.1, -0.7, 0.3, 0.05])
    for k in (1, 2, 5):
        np.testing.assert_allclose(
            spectral.eigenvalues(np.linalg.matrix_power(M, k)).real,
            spectral.eigenvalues(M).real ** k,
            atol=1e-12,
        )


def test_power_iteration_converges_at_the_rate_lambda2_over_lambda1():
    M, q = symmetric_with([2.0, 1.0, 0.5, -0.25, 0.1], seed=3)
    result = spectral.power_iteration(M, 40, rng=1)
    assert result.value == pytest.approx(2.0, rel=1e-10)
    assert spectral.angle(result.vector, q[:, 0]) < 1e-10
    assert result.vectors.shape == (41, 5) and result.values.shape == (41,)
    angles = np.array([spectral.angle(v, q[:, 0]) for v in result.vectors])
    # tan(angle_k) shrinks by exactly |lambda_2 / lambda_1| = 1/2 per step (up to the rest)
    ratios = np.tan(angles[11:21]) / np.tan(angles[10:20])
    np.testing.assert_allclose(ratios, 0.5, rtol=1e-3)


def test_power_iteration_from_v0():
    M, _ = symmetric_with([3.0, 1.0])
    v0 = np.array([3.0, 4.0])
    result = spectral.power_iteration(M, 1, v0=v0)
    np.testing.assert_allclose(result.vectors[0], v0 / 5)
    np.testing.assert_allclose(result.vector, M @ v0 / np.linalg.norm(M @ v0))
    a = spectral.power_iteration(M, 5, rng=np.random.default_rng(9))
    b = spectral.power_iteration(M, 5, rng=9)
    np.testing.assert_array_equal(a.vectors, b.vectors)


def test_power_iteration_refuses_a_zero_start_and_no_randomness():
    with pytest.raises(ValueError, match="v0"):
        spectral.power_iteration(np.eye(2), 3, v0=np.zeros(2))
    with pytest.raises(TypeError, match="rng"):
        spectral.power_iteration(np.eye(2), 3)


def test_angle_ignores_sign_and_scale():
    assert spectral.angle(np.array([1.0, 0.0]), np.array([-3.0, 0.0])) == 0.0
    assert spectral.angle(np.array([1.0, 0.0]), np.array([0.0, 2.0])) == pytest.approx(np.pi / 2)


@given(st.integers(1, 6), st.floats(0.1, 3.0), st.integers(0, 999))
def test_scaling_hits_the_requested_radius_and_norm(n, target, seed):
    M = np.random.default_rng(seed).standard_normal((n, n))
    assert spectral.spectral_radius(spectral.scale_to_spectral_radius(M, target)) == (
        pytest.approx(target, rel=1e-9)
    )
    assert spectral.spectral_norm(spectral.scale_to_spectral_norm(M, target)) == pytest.approx(
        target, rel=1e-12
    )


def test_scaling_a_matrix_with_zero_radius_is_refused():
    nilpotent = np.array([[0.0, 1.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match="spectral radius"):
        spectral.scale_to_spectral_radius(nilpotent, 1.0)
    with pytest.raises(ValueError, match="singular value"):
        spectral.scale_to_spectral_norm(np.zeros((2, 3)), 1.0)


@given(st.integers(1, 8), st.floats(0.5, 2.0), st.integers(0, 999))
def test_orthogonal_has_all_singular_values_equal_to_gain(n, gain, seed):
    Q = spectral.orthogonal(n, rng=seed, gain=gain)
    np.testing.assert_allclose(Q.T @ Q, gain**2 * np.eye(n), atol=1e-12)
    np.testing.assert_allclose(spectral.singular_values(Q), gain, rtol=1e-12)
    np.testing.assert_allclose(np.abs(spectral.eigenvalues(Q)), gain, rtol=1e-10)


def test_orthogonal_is_not_biased_towards_the_identity():
    """With the sign fix the distribution is uniform (Haar): E[Q_11] = 0 and E[Q_11^2] = 1/n."""
    rng = np.random.default_rng(0)
    first = np.array([spectral.orthogonal(3, rng=rng)[0, 0] for _ in range(4000)])
    assert abs(first.mean()) < 0.03
    assert first.var() == pytest.approx(1 / 3, abs=0.02)


def test_vanishing_condition_uses_gamma_and_bounds_the_decay():
    W = spectral.scale_to_spectral_norm(np.random.default_rng(2).standard_normal((5, 5)), 0.8)
    assert spectral.vanishing_bound(W) == pytest.approx(0.8)
    assert spectral.vanishing_bound(W, "sigmoid") == pytest.approx(0.2)
    assert spectral.vanishes(W) and spectral.vanishes(3.9 * W, "sigmoid")
    assert not spectral.vanishes(1.25 * W)  # sigma_max = 1: the condition no longer holds
    h = np.tanh(np.random.default_rng(3).standard_normal((4, 15, 5)))
    norms = jacobians.gradient_norms_by_distance(jacobians.step_jacobians(h, W), np.ones((4, 5)))
    assert np.all(norms <= norms[:, :1] * 0.8 ** np.arange(16) * (1 + 1e-12))


def test_power_iteration_refuses_zero_steps():
    with pytest.raises(ValueError, match="steps"):
        spectral.power_iteration(np.eye(3), 0, rng=0)
