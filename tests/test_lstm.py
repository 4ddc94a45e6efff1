"""bptt.lstm against torch.nn.LSTM autograd in float64, and its step functions against its loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bptt import gradcheck, lstm

TOL = 1e-10  # relative error against torch autograd in float64

sizes = st.tuples(
    st.integers(1, 3),  # B
    st.integers(1, 6),  # T (T = 1 included)
    st.integers(1, 4),  # D
    st.integers(1, 5),  # H
)


def torch_lstm(D, H, seed):
    torch.manual_seed(seed)
    return torch.nn.LSTM(D, H, batch_first=True, dtype=torch.float64)


def weights(core):
    return {
        "W_x": core.weight_ih_l0.detach().numpy(),
        "W_h": core.weight_hh_l0.detach().numpy(),
        "b": (core.bias_ih_l0 + core.bias_hh_l0).detach().numpy(),
    }


def inputs(B, T, D, H, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((B, T, D)), 0.5 * rng.standard_normal((B, H)),
            0.5 * rng.standard_normal((B, H)), rng.standard_normal((B, T, H)))


def rel(a, b):
    return gradcheck.relative_error(np.asarray(a), np.asarray(b))


@settings(deadline=None, max_examples=40)
@given(sizes, st.integers(0, 2**16))
def test_forward_backward_match_nn_lstm(dims, seed):
    B, T, D, H = dims
    core = torch_lstm(D, H, seed)
    x, h0, c0, dh = inputs(B, T, D, H, seed)
    w = weights(core)
    h, c, cache = lstm.forward(x, h0, c0, w["W_x"], w["W_h"], w["b"])
    grads = lstm.backward(dh, cache)

    xt, h0t, c0t = (torch.tensor(a, requires_grad=True) for a in (x, h0, c0))
    out, (_, cT) = core(xt, (h0t[None], c0t[None]))
    assert rel(h, out.detach()) <= TOL and rel(c[:, -1], cT[0].detach()) <= TOL
    (out * torch.tensor(dh)).sum().backward()
    theirs = {
        "x": xt.grad, "h0": h0t.grad, "c0": c0t.grad,
        "W_x": core.weight_ih_l0.grad, "W_h": core.weight_hh_l0.grad, "b": core.bias_ih_l0.grad,
    }
    assert rel(core.bias_ih_l0.grad.numpy(), core.bias_hh_l0.grad.numpy()) <= TOL
    for name, value in theirs.items():
        assert rel(grads[name], value.numpy()) <= TOL, name


@settings(deadline=None, max_examples=20)
@given(sizes, st.integers(0, 2**16))
def test_state_adjoints_match_autograd(dims, seed):
    """grads["h"], grads["c"] are the total dL/dh_t, dL/dc_t of every step."""
    B, T, D, H = dims
    core = torch_lstm(D, H, seed)
    x, h0, c0, dh = inputs(B, T, D, H, seed)
    w = {k: torch.tensor(a, requires_grad=True) for k, a in weights(core).items()}
    _, _, cache = lstm.forward(x, h0, c0, **weights(core))
    grads = lstm.backward(dh, cache)
    hs, cs = [], []
    ht, ct = torch.tensor(h0), torch.tensor(c0)
    for t in range(T):
        a = torch.tensor(x[:, t]) @ w["W_x"].T + ht @ w["W_h"].T + w["b"]
        i, f, g, q = a.chunk(4, dim=-1)
        ct = torch.sigmoid(f) * ct + torch.sigmoid(i) * torch.tanh(g)
        ht = torch.sigmoid(q) * torch.tanh(ct)
        ht.retain_grad()
        ct.retain_grad()
        hs.append(ht)
        cs.append(ct)
    (torch.stack(hs, 1) * torch.tensor(dh)).sum().backward()
    assert rel(grads["h"], torch.stack([s.grad for s in hs], 1).numpy()) <= TOL
    assert rel(grads["c"], torch.stack([s.grad for s in cs], 1).numpy()) <= TOL


@given(sizes, st.integers(0, 2**16))
def test_steps_compose_to_the_sequence(dims, seed):
    B, T, D, H = dims
    rng = np.random.default_rng(seed)
    W_x, W_h, b = rng.standard_normal((4 * H, D)), rng.standard_normal((4 * H, H)), rng.standard_normal(4 * H)
    x, h0, c0, dh = inputs(B, T, D, H, seed)
    h, _, cache = lstm.forward(x, h0, c0, W_x, W_h, b)
    full = lstm.backward(dh, cache)
    caches, hp, cp = [], h0, c0
    for t in range(T):
        hp, cp, step = lstm.step_forward(x[:, t], hp, cp, W_x, W_h, b)
        np.testing.assert_allclose(hp, h[:, t], rtol=1e-12, atol=1e-14)
        caches.append(step)
    dh_next, dc_next = np.zeros((B, H)), np.zeros((B, H))
    total = {k: 0.0 for k in ("W_x", "W_h", "b")}
    for t in range(T - 1, -1, -1):
        g = lstm.step_backward(dh[:, t] + dh_next, dc_next, caches[t])
        dh_next, dc_next = g["h_prev"], g["c_prev"]
        np.testing.assert_allclose(g["x"], full["x"][:, t], rtol=1e-10, atol=1e-12)
        for k, value in total.items():
            total[k] = value + g[k]
    for k, value in total.items():
        np.testing.assert_allclose(value, full[k], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dh_next, full["h0"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dc_next, full["c0"], rtol=1e-10, atol=1e-12)


def test_float32_stays_float32():
    x, _, _, dh = (a.astype(np.float32) for a in inputs(2, 3, 2, 4, 0))
    w = {k: a.astype(np.float32) for k, a in weights(torch_lstm(2, 4, 0)).items()}
    h, c, cache = lstm.forward(x, None, None, **w)
    assert h.dtype == c.dtype == np.float32
    assert lstm.backward(dh, cache)["W_h"].dtype == np.float32


def test_sigmoid_is_stable():
    a = np.array([-1000.0, -1.0, 0.0, 1.0, 1000.0])
    s = lstm.sigmoid(a)
    assert np.isfinite(s).all()
    np.testing.assert_allclose(s, torch.sigmoid(torch.tensor(a)).numpy(), rtol=1e-15)


def test_bad_inputs_name_the_argument():
    x, h0, c0, _ = inputs(2, 3, 2, 4, 0)
    w = weights(torch_lstm(2, 4, 0))
    with pytest.raises(ValueError, match="W_h"):
        lstm.forward(x, h0, c0, w["W_x"], w["W_h"][:12], w["b"])
    with pytest.raises(ValueError, match="x"):
        lstm.forward(x[..., :1], h0, c0, **w)
    with pytest.raises(ValueError, match="c0"):
        lstm.forward(x, h0, c0[:, :3], **w)
    _, _, cache = lstm.forward(x, h0, c0, **w)
    with pytest.raises(ValueError, match="dh"):
        lstm.backward(np.zeros((2, 4, 4)), cache)
    with pytest.raises(TypeError, match="cache"):
        lstm.backward(np.zeros((2, 3, 4)), {"h": 1})
    _, _, step = lstm.step_forward(x[:, 0], h0, c0, **w)
    with pytest.raises(ValueError, match="dc_t"):
        lstm.step_backward(np.zeros((2, 4)), np.zeros((2, 5)), step)
