"""bptt.torch.monitor: gradient norms, clipping rules, dL/dh_t recording, divergence errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch_helpers import F64, TOL, randn, rel

from bptt.torch import (
    NonFiniteError,
    RecurrentLayer,
    SequenceRegressor,
    check_finite,
    clip_grad_norm,
    clip_grad_value,
    grad_norms,
    record_hidden,
)


def _params_with_grads(seed, scale=1.0, shapes=((3, 2), (4,), (2, 2, 2))):
    params = [torch.nn.Parameter(randn(*s, seed=seed + i)) for i, s in enumerate(shapes)]
    for i, p in enumerate(params):
        p.grad = randn(*p.shape, seed=100 + seed + i) * scale
    return params


@given(seed=st.integers(0, 1000), scale=st.floats(1e-3, 1e3))
def test_grad_norms_are_the_global_and_per_parameter_norms(seed, scale):
    params = _params_with_grads(seed, scale)
    params.append(torch.nn.Parameter(torch.zeros(2)))  # no gradient: counts as 0
    norm, per_param = grad_norms((f"p{i}", p) for i, p in enumerate(params))
    everything = torch.cat([p.grad.flatten() for p in params[:-1]])
    assert norm == pytest.approx(float(everything.norm()), rel=1e-12)
    assert list(per_param) == ["p0", "p1", "p2", "p3"] and per_param["p3"] == 0.0
    assert per_param["p1"] == pytest.approx(float(params[1].grad.norm()), rel=1e-12)


@given(seed=st.integers(0, 1000), max_norm=st.floats(0.1, 10.0))
def test_clip_grad_norm_is_the_textbook_rule(seed, max_norm):
    params = _params_with_grads(seed)
    before = [p.grad.clone() for p in params]
    norm = math.sqrt(sum(float(g.norm()) ** 2 for g in before))
    fired = clip_grad_norm(params, max_norm)
    assert fired == (norm > max_norm)
    for p, g in zip(params, before):
        assert rel(p.grad, g * min(1.0, max_norm / norm)) <= 1e-14
    # torch's clip_grad_norm_ adds 1e-6 to the norm; otherwise it is the same rule
    reference = _params_with_grads(seed)
    torch.nn.utils.clip_grad_norm_(reference, max_norm)
    assert all(rel(p.grad, q.grad) <= 1e-5 for p, q in zip(params, reference))


def test_clipped_norm_is_exactly_the_threshold_and_nan_propagates():
    params = _params_with_grads(1, scale=50.0)
    assert clip_grad_norm(params, 0.5)
    assert grad_norms((f"p{i}", p) for i, p in enumerate(params))[0] == pytest.approx(
        0.5, rel=1e-14
    )
    params[0].grad[0, 0] = float("inf")
    assert math.isinf(grad_norms((f"p{i}", p) for i, p in enumerate(params))[0])
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm(params, 0.0)


@given(seed=st.integers(0, 1000), clip_value=st.floats(0.05, 3.0))
def test_clip_grad_value_clamps_and_counts(seed, clip_value):
    params = _params_with_grads(seed)
    expected = sum(int((p.grad.abs() > clip_value).sum()) for p in params)
    reference = _params_with_grads(seed)
    torch.nn.utils.clip_grad_value_(reference, clip_value)
    assert clip_grad_value(params, clip_value) == expected
    assert all(torch.equal(p.grad, q.grad) for p, q in zip(params, reference))


def test_clip_grad_value_without_gradients_and_bad_value():
    assert clip_grad_value([torch.nn.Parameter(torch.zeros(2))], 1.0) == 0
    with pytest.raises(ValueError, match="clip_value"):
        clip_grad_value([], -1.0)


def test_check_finite_messages():
    check_finite(1, (0, 5), 0.3, 2.0, 0.1)
    with pytest.raises(
        NonFiniteError,
        match=r"update 7 \(time steps 30..34\): loss = inf, "
        r"gradient norm = nan.*now 0.05",
    ):
        check_finite(7, (30, 35), math.inf, math.nan, 0.05)
    with pytest.raises(NonFiniteError, match="lower the learning rate, or check the inputs"):
        check_finite(1, (0, 1), 1.0, math.inf, None)


def test_recorded_hidden_gradients_follow_the_bptt_recursion():
    """dL/dh_t = dl_t/dh_t + (dL/dh_{t+1} * (1 - h_{t+1}^2)) W_hh  (the backward recursion of BPTT in numpy)."""
    model = SequenceRegressor(2, 4, 3, readout="all", fused=False, seed=3, dtype=F64, device="cpu")
    x, y = randn(2, 6, 2, seed=1), randn(2, 6, 3, seed=2)
    with record_hidden(model) as record:
        out, _ = model(x)
        F.mse_loss(out, y).backward()
    h = torch.stack(record.states, dim=1).detach()
    direct = (2 * (out - y) / out.numel()).detach() @ model.readout.weight.detach()
    W_hh = model.rnn.core.weight_hh_l0.detach()
    delta = [direct[:, -1]]
    for t in range(4, -1, -1):
        delta.insert(0, direct[:, t] + (delta[0] * (1 - h[:, t + 1] ** 2)) @ W_hh)
    expected = torch.stack(delta, dim=1)
    assert rel(record.grads(), expected) <= TOL
    assert rel(record.grad_norms(), expected.flatten(2).norm(dim=2).norm(dim=0)) <= TOL
    assert record.grad_norms().shape == (6,)


def test_record_hidden_guards():
    layer = RecurrentLayer("rnn", 2, 3, device="cpu")
    with pytest.raises(ValueError, match="fused"), record_hidden(layer):
        pass
    layer.fused = False
    with pytest.raises(RuntimeError, match="boom"), record_hidden(layer):
        raise RuntimeError("boom")
    assert layer.recorder is None
    with record_hidden(layer) as record:
        with torch.no_grad():
            layer(torch.zeros(1, 4, 2))
        layer.fused = True
        with pytest.raises(ValueError, match="fused: the fused kernel hides"):
            layer(torch.zeros(1, 4, 2))
    with pytest.raises(ValueError, match="no hidden state was recorded"):
        record.grads()
    two = torch.nn.Sequential(
        RecurrentLayer("rnn", 2, 3, device="cpu"), RecurrentLayer("rnn", 3, 3, device="cpu")
    )
    with pytest.raises(ValueError, match="exactly one RecurrentLayer.*found 2"), record_hidden(two):
        pass
