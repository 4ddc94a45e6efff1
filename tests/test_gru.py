"""bptt.gru against torch.nn.GRU autograd in float64, and its step functions against its loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bptt import gradcheck, gru

TOL = 1e-10  # relative error against torch autograd in float64

sizes = st.tuples(
    st.integers(1, 3),  # B
    st.integers(1, 6),  # T (T = 1 included)
    st.integers(1, 4),  # D
    st.integers(1, 5),  # H
)


def torch_gru(D, H, seed):
    torch.manual_seed(seed)
    return torch.nn.GRU(D, H, batch_first=True, dtype=torch.float64)


def weights(core):
    return {
        "W_x": core.weight_ih_l0.detach().numpy(),
        "W_h": core.weight_hh_l0.detach().numpy(),
        "b_x": core.bias_ih_l0.detach().numpy(),
        "b_h": core.bias_hh_l0.detach().numpy(),
    }


def inputs(B, T, D, H, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((B, T, D)), 0.5 * rng.standard_normal((B, H)), rng.standard_normal((B, T, H))


def rel(a, b):
    return gradcheck.relative_error(np.asarray(a), np.asarray(b))


@settings(deadline=None, max_examples=40)
@given(sizes, st.integers(0, 2**16))
def test_forward_backward_match_nn_gru(dims, seed):
    B, T, D, H = dims
    core = torch_gru(D, H, seed)
    x, h0, dh = inputs(B, T, D, H, seed)
    h, cache = gru.forward(x, h0, **weights(core))
    grads = gru.backward(dh, cache)

    xt, h0t = (torch.tensor(a, requires_grad=True) for a in (x, h0))
    out, _ = core(xt, h0t[None])
    assert rel(h, out.detach()) <= TOL
    (out * torch.tensor(dh)).sum().backward()
    theirs = {
        "x": xt.grad, "h0": h0t.grad, "W_x": core.weight_ih_l0.grad,
        "W_h": core.weight_hh_l0.grad, "b_x": core.bias_ih_l0.grad, "b_h": core.bias_hh_l0.grad,
    }
    for name, value in theirs.items():
        assert rel(grads[name], value.numpy()) <= TOL, name


@settings(deadline=None, max_examples=20)
@given(sizes, st.integers(0, 2**16))
def test_step_jacobian_is_direct_plus_gated(dims, seed):
    """diag(z_t) + the gated part equals autograd's full dh_t/dh_{t-1}."""
    B, _, D, H = dims
    core = torch_gru(D, H, seed)
    x, h0, _ = inputs(B, 1, D, H, seed)
    w = weights(core)
    _, cache = gru.step_forward(x[:, 0], h0, **w)
    direct, gated = gru.step_jacobian(cache)
    for b in range(B):
        jac = torch.autograd.functional.jacobian(
            lambda h, b=b: core(torch.tensor(x[b : b + 1]), h[None, None])[0][0, 0],
            torch.tensor(h0[b]))
        assert rel(direct[b] + gated[b], jac.numpy()) <= TOL
        np.testing.assert_allclose(np.diag(direct[b]), cache.z[b], rtol=0, atol=0)


@given(sizes, st.integers(0, 2**16))
def test_steps_compose_to_the_sequence(dims, seed):
    B, T, D, H = dims
    rng = np.random.default_rng(seed)
    w = {"W_x": rng.standard_normal((3 * H, D)), "W_h": rng.standard_normal((3 * H, H)),
         "b_x": rng.standard_normal(3 * H), "b_h": rng.standard_normal(3 * H)}
    x, h0, dh = inputs(B, T, D, H, seed)
    h, cache = gru.forward(x, h0, **w)
    full = gru.backward(dh, cache)
    caches, hp = [], h0
    for t in range(T):
        hp, step = gru.step_forward(x[:, t], hp, **w)
        np.testing.assert_allclose(hp, h[:, t], rtol=1e-12, atol=1e-14)
        caches.append(step)
    dh_next = np.zeros((B, H))
    total = {k: 0.0 for k in w}
    for t in range(T - 1, -1, -1):
        np.testing.assert_allclose(dh[:, t] + dh_next, full["h"][:, t], rtol=1e-10, atol=1e-12)
        g = gru.step_backward(dh[:, t] + dh_next, caches[t])
        dh_next = g["h_prev"]
        np.testing.assert_allclose(g["x"], full["x"][:, t], rtol=1e-10, atol=1e-12)
        for k, value in total.items():
            total[k] = value + g[k]
    for k, value in total.items():
        np.testing.assert_allclose(value, full[k], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dh_next, full["h0"], rtol=1e-10, atol=1e-12)


def test_float32_stays_float32():
    x, _, dh = (a.astype(np.float32) for a in inputs(2, 3, 2, 4, 0))
    w = {k: a.astype(np.float32) for k, a in weights(torch_gru(2, 4, 0)).items()}
    h, cache = gru.forward(x, None, **w)
    assert h.dtype == np.float32
    assert gru.backward(dh, cache)["W_h"].dtype == np.float32


def test_bad_inputs_name_the_argument():
    x, h0, _ = inputs(2, 3, 2, 4, 0)
    w = weights(torch_gru(2, 4, 0))
    with pytest.raises(ValueError, match="W_h"):
        gru.forward(x, h0, w["W_x"], w["W_h"][:8], w["b_x"], w["b_h"])
    with pytest.raises(ValueError, match="b_h"):
        gru.forward(x, h0, w["W_x"], w["W_h"], w["b_x"], w["b_h"][:5])
    with pytest.raises(ValueError, match="h0"):
        gru.forward(x, h0[:, :3], **w)
    _, cache = gru.forward(x, h0, **w)
    with pytest.raises(ValueError, match="dh"):
        gru.backward(np.zeros((2, 3, 5)), cache)
    with pytest.raises(TypeError, match="cache"):
        gru.step_jacobian(cache)
