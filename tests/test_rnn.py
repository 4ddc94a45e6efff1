"""bptt.rnn against torch autograd (float64), finite differences and its own step functions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from bptt import gradcheck, rnn

TOL = 1e-10  # relative error against torch autograd in float64
FD_TOL = 1e-6  # relative error against centred finite differences

sizes = st.tuples(
    st.integers(1, 3),  # B
    st.integers(1, 6),  # T (T = 1 included)
    st.integers(1, 4),  # D
    st.integers(1, 5),  # H
)


def make(B, T, D, H, Q=2, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    params = rnn.init_params(D, H, Q, rng=rng, dtype=dtype)
    params["b"] = 0.1 * rng.standard_normal(H).astype(dtype)
    params["b_y"] = 0.1 * rng.standard_normal(Q).astype(dtype)
    x = rng.standard_normal((B, T, D)).astype(dtype)
    h0 = 0.5 * rng.standard_normal((B, H)).astype(dtype)
    return rng, params, x, h0


def torch_hidden(x, h0, W_xh, W_hh, b, activation):
    """The RNN as a loop of torch ops; returns the stacked states (B, T, H)."""
    f = torch.tanh if activation == "tanh" else (lambda a: a)
    h, states = h0, []
    for t in range(x.shape[1]):
        h = f(x[:, t] @ W_xh.T + h @ W_hh.T + b)
        states.append(h)
    return torch.stack(states, dim=1)


def leaves(**arrays):
    return {k: torch.tensor(a, dtype=torch.float64, requires_grad=True) for k, a in arrays.items()}


def assert_close(ours: dict, theirs: dict, tol: float = TOL) -> None:
    errors = gradcheck.relative_errors({k: ours[k] for k in theirs}, theirs)
    assert max(errors.values()) <= tol, errors


@given(sizes, st.sampled_from(rnn.ACTIVATIONS), st.integers(0, 2**16))
def test_forward_backward_match_torch_autograd(dims, activation, seed):
    rng, p, x, h0 = make(*dims, seed=seed)
    dh = rng.standard_normal((dims[0], dims[1], dims[3]))
    h, cache = rnn.forward(x, h0, p["W_xh"], p["W_hh"], p["b"], activation=activation)
    grads = rnn.backward(dh, cache)

    t = leaves(x=x, h0=h0, W_xh=p["W_xh"], W_hh=p["W_hh"], b=p["b"])
    h_torch = torch_hidden(t["x"], t["h0"], t["W_xh"], t["W_hh"], t["b"], activation)
    torch.autograd.backward(h_torch, torch.from_numpy(dh))
    np.testing.assert_allclose(h, h_torch.detach().numpy(), rtol=1e-13, atol=1e-14)
    assert_close(grads, {k: v.grad.numpy() for k, v in t.items()})


@given(sizes, st.sampled_from(rnn.ACTIVATIONS), st.integers(0, 2**16))
def test_sequence_equals_loop_of_steps(dims, activation, seed):
    rng, p, x, h0 = make(*dims, seed=seed)
    dh = rng.standard_normal((dims[0], dims[1], dims[3]))
    h, cache = rnn.forward(x, h0, p["W_xh"], p["W_hh"], p["b"], activation=activation)
    whole = rnn.backward(dh, cache)

    h_prev, caches = h0, []
    for t in range(x.shape[1]):
        h_prev, step_cache = rnn.step_forward(
            x[:, t], h_prev, p["W_xh"], p["W_hh"], p["b"], activation=activation
        )
        np.testing.assert_allclose(h_prev, h[:, t], rtol=1e-13, atol=1e-14)
        caches.append(step_cache)
    total = {k: np.zeros_like(whole[k]) for k in ("W_xh", "W_hh", "b")}
    dx = np.zeros_like(x)
    carry = np.zeros_like(h0)
    for t in reversed(range(x.shape[1])):
        local = rnn.step_backward(dh[:, t] + carry, caches[t])
        for key in total:
            total[key] += local[key]
        dx[:, t], carry = local["x"], local["h_prev"]
    assert_close(whole, {**total, "x": dx, "h0": carry}, tol=1e-12)


def test_cache_properties_hold_previous_states_and_derivative():
    _, p, x, h0 = make(2, 4, 3, 5)
    h, cache = rnn.forward(x, h0, p["W_xh"], p["W_hh"], p["b"])
    np.testing.assert_array_equal(cache.h_prev[:, 0], h0)
    np.testing.assert_array_equal(cache.h_prev[:, 1:], h[:, :-1])
    np.testing.assert_allclose(cache.derivative, 1 - h**2)


def test_h0_none_means_zeros_and_float32_stays_float32():
    _, p, x, _ = make(2, 3, 2, 4, dtype=np.float32)
    h, cache = rnn.forward(x, None, p["W_xh"], p["W_hh"], p["b"])
    h_zero, _ = rnn.forward(x, np.zeros((2, 4), np.float32), p["W_xh"], p["W_hh"], p["b"])
    np.testing.assert_array_equal(h, h_zero)
    assert h.dtype == np.float32
    grads = rnn.backward(np.ones_like(h), cache)
    assert all(g.dtype == np.float32 for g in grads.values())


@given(
    sizes, st.sampled_from(["mse", "cross_entropy"]), st.sampled_from(rnn.STEPS), st.integers(0, 99)
)
def test_model_loss_and_gradients_match_torch(dims, loss, steps, seed):
    B, T, D, H = dims
    Q = 3
    rng, p, x, h0 = make(B, T, D, H, Q=Q, seed=seed)
    if loss == "mse":
        y = rng.standard_normal((B, T, Q))
    else:
        y = rng.integers(0, Q, size=(B, T))
    value, grads = rnn.loss_and_gradients(x, y, p, h0=h0, loss=loss, steps=steps)

    t = leaves(x=x, h0=h0, **p)
    h = torch_hidden(t["x"], t["h0"], t["W_xh"], t["W_hh"], t["b"], "tanh")
    o = h @ t["W_hy"].T + t["b_y"]
    if steps == "last":
        o = o[:, -1:]
        y = y[:, -1:]
    if loss == "mse":
        per_step = 0.5 * ((o - torch.from_numpy(y)) ** 2).sum(-1)
        reference = per_step.mean()
    else:
        reference = torch.nn.functional.cross_entropy(
            o.reshape(-1, Q), torch.from_numpy(y).reshape(-1)
        )
    reference.backward()
    assert value == pytest.approx(reference.item(), rel=1e-12)
    assert_close(grads, {k: v.grad.numpy() for k, v in t.items()})


def test_model_gradients_match_finite_differences():
    rng, p, x, h0 = make(2, 4, 3, 4, Q=3, seed=7)
    y = rng.standard_normal((2, 4, 3))
    _, grads = rnn.loss_and_gradients(x, y, p, h0=h0)

    def loss(a):
        params = {k: a[k] for k in rnn.PARAMETER_NAMES}
        return rnn.loss_and_gradients(a["x"], y, params, h0=a["h0"])[0]

    numeric = gradcheck.numerical_gradients(loss, {**p, "x": x, "h0": h0})
    assert gradcheck.max_relative_error(grads, numeric) <= FD_TOL


def test_losses_weight_the_steps():
    o = np.arange(12.0).reshape(2, 3, 2)
    y = np.zeros_like(o)
    value, grad = rnn.mse_loss(o, y)
    assert value == pytest.approx(0.5 * (o**2).sum() / 6)
    np.testing.assert_allclose(grad, o / 6)
    value, grad = rnn.mse_loss(o, y, steps="last")
    assert value == pytest.approx(0.5 * (o[:, -1] ** 2).sum() / 2)
    np.testing.assert_array_equal(grad[:, :-1], 0.0)
    np.testing.assert_allclose(grad[:, -1], o[:, -1] / 2)


def test_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[[1e4, 0.0, -1e4], [5e3, 5e3, 0.0]]])
    targets = np.array([[0, 1]])
    value, grad = rnn.cross_entropy_loss(logits, targets)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    assert value == pytest.approx(np.log(2) / 2)  # step 1: loss 0, step 2: log 2
    np.testing.assert_allclose(grad[0, 1], [0.25, -0.25, 0.0], atol=1e-15)
    np.testing.assert_allclose(rnn.log_softmax(logits).max(), 0.0)


def test_readout_without_bias_and_its_backward():
    rng = np.random.default_rng(3)
    h = rng.standard_normal((2, 3, 4))
    W_hy = rng.standard_normal((5, 4))
    o = rnn.readout(h, W_hy)
    np.testing.assert_allclose(o, np.einsum("qh,bth->btq", W_hy, h))
    do = rng.standard_normal(o.shape)
    back = rnn.readout_backward(do, h, W_hy)
    np.testing.assert_allclose(back["W_hy"], np.einsum("btq,bth->qh", do, h))
    np.testing.assert_allclose(back["b_y"], do.sum((0, 1)))
    np.testing.assert_allclose(back["h"], do @ W_hy)


def test_init_params_shapes_scale_and_seed():
    p = rnn.init_params(3, 4, 2, rng=5)
    assert {k: v.shape for k, v in p.items()} == {
        "W_xh": (4, 3),
        "W_hh": (4, 4),
        "b": (4,),
        "W_hy": (2, 4),
        "b_y": (2,),
    }
    again = rnn.init_params(3, 4, 2, rng=np.random.default_rng(5))
    assert all(np.array_equal(p[k], again[k]) for k in p)
    big = rnn.init_params(1, 400, 1, rng=0)["W_hh"]
    assert big.std() == pytest.approx(1 / np.sqrt(400), rel=0.05)
    assert rnn.init_params(2, 2, 2, rng=0, dtype=np.float32)["W_xh"].dtype == np.float32


# ----------------------------------------------------------------------------- the plain loop


@pytest.mark.parametrize("activation", rnn.ACTIVATIONS)
def test_backward_equals_the_generalised_recursion_with_unit_scales(activation):
    """rnn.backward (the plain loop) and truncation's _adjoints with every scale 1 agree."""
    from bptt import truncation

    _, params, x, h0 = make(3, 7, 2, 5, seed=4)
    _, cache = rnn.forward(x, h0, params["W_xh"], params["W_hh"], params["b"], activation=activation)
    dh = np.random.default_rng(5).standard_normal(cache.h.shape)
    plain = rnn.backward(dh, cache)
    general = truncation.scaled_gradient(dh, cache, np.ones(cache.h.shape[:2]))
    for name in plain:
        np.testing.assert_allclose(plain[name], general[name], rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------- error messages


def test_time_first_x_is_named_instead_of_h0():
    _, params, x, h0 = make(3, 7, 2, 5)
    with pytest.raises(ValueError, match=r"x: expected batch first.*looks time-first \(T, B, D\)") as err:
        rnn.forward(x.transpose(1, 0, 2), h0, params["W_xh"], params["W_hh"], params["b"])
    assert "(7, 3, 2)" in str(err.value) and not str(err.value).startswith("h0")


def test_batch_sizes_that_disagree_are_named():
    _, params, x, h0 = make(3, 7, 2, 5)
    with pytest.raises(ValueError, match=r"h0: expected shape \(B, H\) with B = 3 .*batch sizes disagree"):
        rnn.forward(x, h0[:2], params["W_xh"], params["W_hh"], params["b"])


# --------------------------------------------------------------------------- time-major fast path


@pytest.mark.parametrize("activation", ["tanh", "identity"])
def test_time_major_fast_path_gives_the_plain_loops_gradients(activation):
    rng = np.random.default_rng(3)
    B, T, D, H = 3, 7, 4, 5
    p = rnn.init_params(D, H, 1, rng=rng)
    x = rng.standard_normal((B, T, D))
    h0 = rng.standard_normal((B, H))
    dh = rng.standard_normal((B, T, H))
    h, cache = rnn.forward(x, h0, p["W_xh"], p["W_hh"], p["b"], activation=activation)
    plain = rnn.backward(dh, cache)
    h_tm, cache_tm = rnn.forward_time_major(np.swapaxes(x, 0, 1), h0, p["W_xh"], p["W_hh"],
                                            p["b"], activation=activation)
    np.testing.assert_allclose(np.swapaxes(h_tm, 0, 1), h, rtol=1e-13, atol=1e-14)
    fast = rnn.backward_time_major(np.swapaxes(dh, 0, 1), cache_tm)
    fast["x"] = np.swapaxes(fast["x"], 0, 1)
    assert set(fast) == set(plain)
    from bptt import gradcheck

    assert gradcheck.max_relative_error(plain, fast) < 1e-12
    # a second backward from the same cache gives the same result (the scratch is refilled)
    again = rnn.backward_time_major(np.swapaxes(dh, 0, 1), cache_tm)
    np.testing.assert_array_equal(np.swapaxes(again["x"], 0, 1), fast["x"])


def test_time_major_states_are_one_contiguous_buffer_and_keep_float32():
    rng = np.random.default_rng(0)
    p = rnn.init_params(2, 3, 1, rng=rng, dtype=np.float32)
    x = rng.standard_normal((6, 2, 2)).astype(np.float32)
    h, cache = rnn.forward_time_major(x, None, p["W_xh"], p["W_hh"], p["b"])
    assert cache.states.shape == (7, 2, 3) and cache.states.flags.c_contiguous
    assert h.base is cache.states and h.dtype == np.float32
    np.testing.assert_array_equal(cache.states[0], 0.0)
    grads = rnn.backward_time_major(np.ones((6, 2, 3), np.float32), cache)
    assert all(g.dtype == np.float32 for g in grads.values())


def test_time_major_checks_its_arguments():
    p = rnn.init_params(2, 3, 1, rng=0)
    with pytest.raises(ValueError, match="x"):
        rnn.forward_time_major(np.zeros((4, 2)), None, p["W_xh"], p["W_hh"], p["b"])
    _, cache = rnn.forward_time_major(np.zeros((4, 2, 2)), None, p["W_xh"], p["W_hh"], p["b"])
    with pytest.raises(ValueError, match="dh"):
        rnn.backward_time_major(np.zeros((4, 3, 3)), cache)
    with pytest.raises(TypeError, match="TimeMajorCache"):
        rnn.backward_time_major(np.zeros((4, 2, 3)), object())
