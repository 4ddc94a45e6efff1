"""The clipping chapter's claim predicates (bptt.claims.clipping) and the population trainer
they are measured on (bptt.torch.population), with negative controls: each predicate fails
on a world where its claim is false."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bptt import spectral, tasks
from bptt.claims import clipping as claims
from bptt.torch import clip_grad_norm, saturation_fraction
from bptt.torch import population as pop

BASELINE = tasks.ADDING_BASELINE_MSE


# ----------------------------------------------------------------------------- population


def _hand_run(seed, *, T, H, B, lr, kappa, updates):
    """One network of the population, written as the plain single-network SGD loop."""
    rng = np.random.default_rng(seed)
    bound = 1 / math.sqrt(H)
    W_hh = spectral.orthogonal(H, rng=rng)
    W_xh = rng.uniform(-bound, bound, (H, 2))
    W_hy = rng.uniform(-bound, bound, (1, H))
    params = [
        torch.tensor(a, dtype=torch.float64, requires_grad=True)
        for a in (W_xh, W_hh, np.zeros(H), W_hy, np.zeros(1))
    ]
    data = np.random.default_rng([seed, 1])
    norms = []
    for _ in range(updates):
        x, y = (torch.tensor(a) for a in tasks.adding_problem(B, T, seed=data))
        h = torch.zeros(B, H, dtype=torch.float64)
        for t in range(T):
            h = torch.tanh(x[:, t] @ params[0].T + h @ params[1].T + params[2])
        loss = ((h @ params[3].T + params[4] - y) ** 2).mean()
        for p in params:
            p.grad = None
        loss.backward()
        norms.append(math.sqrt(sum(float(p.grad.norm()) ** 2 for p in params)))
        clip_grad_norm(params, kappa)  # the exact rule (torch's adds 1e-6 to the norm)
        with torch.no_grad():
            for p in params:
                p -= lr * p.grad
    return [p.detach() for p in params], norms


def test_population_member_is_the_single_network_run():
    kw = {"T": 6, "H": 5, "B": 4, "updates": 6}
    run = pop.train_adding([3, 5], lr=0.5, clip_norm=0.3, dtype=torch.float64, **kw)
    for s, seed in enumerate([3, 5]):
        _, norms = _hand_run(seed, lr=0.5, kappa=0.3, **kw)
        np.testing.assert_allclose(run.grad_norm[s], norms, rtol=1e-10)
        assert run.clipped[s].tolist() == [n > 0.3 for n in norms]
    total = sum(run.group_norms[g] ** 2 for g in pop.GROUPS)
    np.testing.assert_allclose(total, run.grad_norm**2, rtol=1e-12)


def test_population_member_does_not_depend_on_the_others():
    kw = {"T": 5, "H": 4, "B": 3, "updates": 5, "lr": 0.3}
    alone = pop.train_adding([7], **kw)
    together = pop.train_adding([1, 7, 2], **kw)
    np.testing.assert_allclose(together.loss[1], alone.loss[0], rtol=1e-5)


def test_population_freezes_a_diverged_member():
    # the read-out step-size instability: gain 2.5 and lr 0.1 at T = 20 diverges (float32)
    run = pop.train_adding(
        [0, 0], T=20, H=16, B=16, updates=80, lr=0.1, clip_norm=[math.inf, 1.0], gain=2.5
    )
    assert run.diverged_at[0] > 0 and run.diverged_at[1] == 0
    assert math.isinf(run.test_mse[0]) and math.isfinite(run.test_mse[1])
    assert len(run.member(0)["loss"]) == run.diverged_at[0]


def test_population_validates_its_arguments():
    with pytest.raises(ValueError, match="lr"):
        pop.train_adding([0, 1], T=4, H=3, B=2, updates=1, lr=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="clip_norm"):
        pop.train_adding([0], T=4, H=3, B=2, updates=1, lr=0.1, clip_norm=-1.0)
    with pytest.raises(ValueError, match="seeds"):
        pop.RNNPopulation([], D=2, H=3)
    with pytest.raises(ValueError, match="x: expected shape"):
        pop.RNNPopulation([0], D=2, H=3).forward(torch.zeros(2, 1, 3, 2))


def test_saturation_fraction():
    h = torch.tensor([[0.5, -0.9995], [0.9999, 0.1]])
    assert float(saturation_fraction(h)) == 0.5
    np.testing.assert_allclose(saturation_fraction(h, dim=1).numpy(), [0.5, 0.5])
    with pytest.raises(ValueError, match="level"):
        saturation_fraction(h, level=1.0)
    with pytest.raises(TypeError, match="h: expected a tensor"):
        saturation_fraction(np.zeros(3))


# ------------------------------------------------------------------ beats the baseline


def test_clipping_learns_holds_for_networks_well_below_the_baseline():
    result = claims.clipping_learns(
        [0.03, 0.05, 0.08, 0.02, 0.2], BASELINE, factor=0.75, majority=0.8
    )
    assert result.holds and result.table.count == 4 and result.table.rate == 0.8


@pytest.mark.negative_control
def test_clipping_learns_fails_for_a_predictor_no_better_than_the_baseline():
    # the constant prediction 1 on a test set: its MSE is the baseline itself, on every seed
    _, y = tasks.adding_problem(2000, 10, seed=1)
    constant = [float(np.mean((y - 1.0) ** 2))] * 5
    assert not claims.clipping_learns(constant, BASELINE, factor=0.75).holds
    # "finite and below 1" (the old check) is far weaker: it would pass here
    assert max(constant) < 1.0


@pytest.mark.negative_control
def test_clipping_learns_fails_for_clipped_runs_that_only_stay_finite():
    # gain 2.5, lr 0.1, clipped at 1: no run diverges, and none learns
    run = pop.train_adding(range(5), T=20, H=16, B=16, updates=80, lr=0.1, clip_norm=1.0, gain=2.5)
    assert (run.diverged_at == 0).all()
    assert not claims.clipping_learns(run.test_mse, BASELINE, factor=0.75).holds


def test_success_table_validates():
    with pytest.raises(ValueError, match="factor"):
        claims.success_table([0.1], BASELINE, factor=1.5)
    with pytest.raises(ValueError, match="test_mse"):
        claims.success_table([], BASELINE)
    table = claims.success_table([math.inf, 0.01], BASELINE)
    assert table.success == (False, True)


# ------------------------------------------------------------------ which gradient spikes


def _trace(run, s):
    m = run.member(s)
    return m["grad_norm"], {g: m[g] for g in pop.GROUPS}, m["saturation"]


def test_recurrent_spike_holds_on_a_synthetic_recurrent_spike():
    U = 30
    groups = {"recurrent": np.full(U, 0.3), "readout": np.full(U, 0.4)}
    groups["recurrent"][20] = 50.0
    g = np.sqrt(groups["recurrent"] ** 2 + groups["readout"] ** 2)
    result = claims.recurrent_spike(g, groups, np.zeros(U))
    assert result.holds and result.spike.update == 21 and result.spike.ratio > 50


@pytest.mark.negative_control
def test_recurrent_spike_fails_on_the_readout_instability():
    # gain 2.5, lr 0.1: the units saturate, dL/dW_hh -> 0, the read-out gradient explodes
    run = pop.train_adding(range(5), T=20, H=16, B=16, updates=80, lr=0.1, gain=2.5)
    for s in range(5):
        assert run.diverged_at[s] > 0 or run.loss[s, -1] > 1e3  # it blew up
        assert run.member(s)["saturation"][-1] > 0.99  # and the units are saturated
    result = claims.explosions_start_in_recurrence(_trace(run, s) for s in range(5))
    assert not result.holds and result.fraction <= 0.2


def test_explosions_start_in_recurrence_on_the_chapter_setting():
    # eta = 0.2, T = 10, H = 16 (the chapter's runs): the first spike of most diverged runs
    run = pop.train_adding(range(10), T=10, H=16, B=32, updates=60, lr=0.2)
    diverged = [s for s in range(10) if run.diverged_at[s]]
    assert len(diverged) >= 3
    assert claims.explosions_start_in_recurrence(_trace(run, s) for s in diverged).holds


@pytest.mark.negative_control
def test_recurrent_spike_fails_without_a_spike_and_on_a_readout_spike():
    U = 30
    flat = {"recurrent": np.full(U, 0.3), "readout": np.full(U, 0.4)}
    g = np.sqrt(flat["recurrent"] ** 2 + flat["readout"] ** 2)
    assert claims.recurrent_spike(g, flat, np.zeros(U)).spike is None
    assert not claims.recurrent_spike(g, flat, np.zeros(U)).holds
    readout = {k: a.copy() for k, a in flat.items()}
    readout["readout"][20] = 50.0
    g = np.sqrt(readout["recurrent"] ** 2 + readout["readout"] ** 2)
    assert not claims.recurrent_spike(g, readout, np.zeros(U)).holds


def test_first_spike_validates():
    with pytest.raises(ValueError, match="saturation"):
        claims.first_spike([1.0, 2.0], {"recurrent": [1.0, 2.0]}, [0.0])
    with pytest.raises(ValueError, match="group"):
        claims.recurrent_spike([1.0, 2.0], {"readout": [1.0, 2.0]}, [0.0, 0.0])


# ------------------------------------------------------------------ the cliff


def test_wall_steepens():
    assert claims.wall_steepens([3.7, 29, 540, 7.5e4]).holds


@pytest.mark.negative_control
def test_wall_steepens_fails_without_a_cliff():
    # a loss without a wall: the slope of (w - 1)^2 at a fixed point does not depend on T
    assert not claims.wall_steepens([2.0, 2.0, 2.0]).holds
    assert not claims.wall_steepens([1.0, 3.0, 2.0, 500.0]).holds  # not monotone
    assert not claims.wall_steepens([1.0, 2.0, 4.0]).holds  # grows, but 4x is no cliff
