"""Tests of bptt.torch.attention: the causal self-attention layer, its KV cache and the measures of BPTT and Transformers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from bptt.torch.attention import (
    CausalSelfAttention,
    KVCache,
    graph_depth,
    kv_cache_bytes,
    recurrent_state_bytes,
)

F64 = torch.float64


@st.composite
def layers_and_inputs(draw):
    """A float64 layer and an input of random shape (T = 1 included)."""
    n_heads = draw(st.integers(1, 3))
    d_model = n_heads * draw(st.integers(1, 4))
    B, T = draw(st.integers(1, 3)), draw(st.integers(1, 7))
    seed = draw(st.integers(0, 2**16))
    layer = CausalSelfAttention(d_model, n_heads, seed=seed, dtype=F64)
    x = torch.randn(B, T, d_model, generator=torch.Generator().manual_seed(seed + 1), dtype=F64)
    return layer, x


def rel_error(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def reference_attention(layer: CausalSelfAttention, x: torch.Tensor) -> np.ndarray:
    """Equation attention-layer written position by position in numpy (independent of the layer)."""
    W_qkv = layer.W_qkv.detach().numpy()
    W_o = layer.W_o.detach().numpy()
    d, h, dh = layer.d_model, layer.n_heads, layer.d_head
    W_q, W_k, W_v = W_qkv[:d], W_qkv[d : 2 * d], W_qkv[2 * d :]
    x = x.detach().numpy()
    B, T, _ = x.shape
    y = np.zeros_like(x)
    for b in range(B):
        for t in range(T):
            heads = []
            for j in range(h):
                cols = slice(j * dh, (j + 1) * dh)
                q = W_q[cols] @ x[b, t]
                keys = np.stack([W_k[cols] @ x[b, s] for s in range(t + 1)])
                vals = np.stack([W_v[cols] @ x[b, s] for s in range(t + 1)])
                logits = keys @ q / math.sqrt(dh)
                weights = np.exp(logits - logits.max())
                heads.append((weights / weights.sum()) @ vals)
            y[b, t] = W_o @ np.concatenate(heads)
    return y


@given(layers_and_inputs())
def test_forward_matches_positionwise_reference(case):
    layer, x = case
    with torch.no_grad():
        y = layer(x)
    assert y.shape == x.shape
    assert rel_error(y.numpy(), reference_attention(layer, x)) <= 1e-12


@given(layers_and_inputs())
def test_incremental_steps_reproduce_forward(case):
    layer, x = case
    cache = None
    outputs = []
    with torch.no_grad():
        for t in range(x.shape[1]):
            y_t, cache = layer.step(x[:, t], cache)
            outputs.append(y_t)
            assert cache.length == t + 1
        full = layer(x)
    assert rel_error(torch.stack(outputs, dim=1).numpy(), full.numpy()) <= 1e-12


@given(layers_and_inputs(), st.integers(1, 6))
def test_prefill_then_steps_reproduce_forward(case, prompt):
    layer, x = case
    prompt = min(prompt, x.shape[1])
    with torch.no_grad():
        y_prompt, cache = layer.prefill(x[:, :prompt])
        assert cache.length == prompt
        only = layer.kv_cache(x[:, :prompt])
        assert torch.equal(only.keys, cache.keys) and torch.equal(only.values, cache.values)
        outputs = [y_prompt]
        for t in range(prompt, x.shape[1]):
            y_t, cache = layer.step(x[:, t], cache)
            outputs.append(y_t[:, None])
        full = layer(x)
    assert rel_error(torch.cat(outputs, dim=1).numpy(), full.numpy()) <= 1e-12


@given(layers_and_inputs())
def test_causal_no_gradient_from_the_future(case):
    layer, x = case
    x = x.clone().requires_grad_()
    T = x.shape[1]
    for t in range(T):
        (grad,) = torch.autograd.grad(layer(x)[:, t].sum(), x)
        assert torch.all(grad[:, t + 1 :] == 0)
        assert grad[:, t].abs().sum() > 0


def test_gradients_match_finite_differences():
    layer = CausalSelfAttention(4, 2, seed=3, dtype=F64)
    x = torch.randn(
        2, 3, 4, generator=torch.Generator().manual_seed(4), dtype=F64, requires_grad=True
    )
    assert torch.autograd.gradcheck(
        lambda x_, a, b: torch.func.functional_call(layer, {"W_qkv": a, "W_o": b}, (x_,)),
        (x, layer.W_qkv, layer.W_o),
        eps=1e-6,
        atol=1e-8,
    )


def test_seed_and_generator_give_the_same_weights():
    a = CausalSelfAttention(8, 2, seed=5)
    b = CausalSelfAttention(8, 2, seed=torch.Generator().manual_seed(5))
    c = CausalSelfAttention(8, 2, seed=6)
    assert torch.equal(a.W_qkv, b.W_qkv) and torch.equal(a.W_o, b.W_o)
    assert not torch.equal(a.W_qkv, c.W_qkv)
    assert a.W_qkv.dtype == torch.float32


@given(
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 4),
    st.integers(1, 9),
    st.sampled_from([torch.float32, torch.float64]),
)
def test_cache_bytes_match_the_formula(batch, n_heads, d_head, tokens, dtype):
    d_model = n_heads * d_head
    layer = CausalSelfAttention(d_model, n_heads, dtype=dtype)
    x = torch.randn(batch, tokens, d_model, generator=torch.Generator().manual_seed(0), dtype=dtype)
    cache = None
    with torch.no_grad():
        for t in range(tokens):
            _, cache = layer.step(x[:, t], cache)
    assert cache.nbytes == kv_cache_bytes(tokens, d_model, batch=batch, dtype=dtype)
    assert kv_cache_bytes(tokens, d_model, n_layers=3, batch=batch, dtype=dtype) == 3 * cache.nbytes


def test_recurrent_state_bytes_match_an_lstm_state():
    lstm = torch.nn.LSTM(5, 7, num_layers=2, batch_first=True)
    _, (h, c) = lstm(torch.zeros(3, 4, 5))
    measured = h.nbytes + c.nbytes
    assert recurrent_state_bytes(7, n_layers=2, batch=3, n_state_tensors=2) == measured
    assert recurrent_state_bytes(7, dtype=torch.float64) == 7 * 8


def test_kv_cache_of_no_tokens_is_empty():
    assert kv_cache_bytes(0, 16) == 0


def test_graph_depth_counts_a_chain_and_skips_leaves():
    a = torch.ones(3, requires_grad=True)
    assert graph_depth(a * 2) == 1
    assert graph_depth((a * 2).sin().exp()) == 3
    # a diamond: the longest branch counts, shared nodes only once
    b = a.sin()
    assert graph_depth(b + b.cos().exp()) == 4


def test_graph_depth_grows_linearly_for_recurrence_and_not_for_attention():
    gen = torch.Generator().manual_seed(0)
    W = torch.randn(4, 4, generator=gen, requires_grad=True)
    layer = CausalSelfAttention(4, 2)

    def rnn_depth(T):
        h = torch.zeros(1, 4)
        x = torch.randn(1, T, 4, generator=gen)
        for t in range(T):
            h = torch.tanh(x[:, t] + h @ W)
        return graph_depth(h)

    depths = [rnn_depth(T) for T in (1, 2, 3, 50, 2000)]
    per_step = depths[1] - depths[0]
    assert per_step >= 2
    assert depths == [depths[0] + per_step * (T - 1) for T in (1, 2, 3, 50, 2000)]
    attention = [graph_depth(layer(torch.randn(1, T, 4, generator=gen))) for T in (1, 2, 8, 300)]
    # constant from T = 2 on (at T = 1 a reshape is a free view, one node fewer)
    assert attention[0] <= attention[1] == attention[2] == attention[3] < depths[3]


# ----------------------------------------------------------------------------- bad input


def test_constructor_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n_heads: expected a divisor of d_model = 6, got 4"):
        CausalSelfAttention(6, 4)
    with pytest.raises(ValueError, match="d_model: expected an integer >= 1, got 0"):
        CausalSelfAttention(0)
    with pytest.raises(TypeError, match="n_heads: expected an integer"):
        CausalSelfAttention(4, 2.0)
    with pytest.raises(TypeError, match="d_model: expected an integer"):
        CausalSelfAttention(True)
    with pytest.raises(TypeError, match="dtype: expected a floating torch.dtype"):
        CausalSelfAttention(4, dtype=torch.int64)
    with pytest.raises(TypeError, match="seed: expected a torch.Generator or an integer seed"):
        CausalSelfAttention(4, seed=np.random.default_rng(0))


def test_forward_rejects_bad_inputs():
    layer = CausalSelfAttention(4, 2)
    with pytest.raises(TypeError, match=r"x: expected a torch.Tensor of shape \(B, T, d_model\)"):
        layer(np.zeros((1, 2, 4), dtype=np.float32))
    with pytest.raises(ValueError, match=r"d_model = 4, got shape \(1, 2, 5\)"):
        layer(torch.zeros(1, 2, 5))
    with pytest.raises(ValueError, match=r"x: .*got shape \(2, 4\)"):
        layer(torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"x: .*got shape \(1, 0, 4\)"):
        layer(torch.zeros(1, 0, 4))
    with pytest.raises(TypeError, match="x: expected dtype torch.float32 .* got torch.float64"):
        layer(torch.zeros(1, 2, 4, dtype=F64))
    for method in (layer.prefill, layer.kv_cache):
        with pytest.raises(ValueError, match=r"x: .*d_model = 4, got shape \(3, 5\)"):
            method(torch.zeros(3, 5))


def test_step_rejects_bad_inputs():
    layer = CausalSelfAttention(4, 2)
    with pytest.raises(
        ValueError, match=r"x_t: expected a non-empty tensor of shape \(B, d_model\)"
    ):
        layer.step(torch.zeros(1, 1, 4))
    with pytest.raises(TypeError, match="cache: expected a KVCache or None, got tuple"):
        layer.step(torch.zeros(1, 4), (torch.zeros(1), torch.zeros(1)))
    _, cache = layer.step(torch.zeros(2, 4))
    with pytest.raises(
        ValueError,
        match=r"cache: expected keys of shape .* \(1, 2, t, 2\), "
        r"got \(2, 2, 1, 2\)",
    ):
        layer.step(torch.zeros(1, 4), cache)


def test_cache_rejects_bad_tensors():
    with pytest.raises(TypeError, match="keys: expected a torch.Tensor"):
        KVCache(np.zeros((1, 1, 1, 1)), torch.zeros(1, 1, 1, 1))
    with pytest.raises(ValueError, match=r"values: expected a 4-D tensor .* got shape \(1, 1\)"):
        KVCache(torch.zeros(1, 1, 1, 1), torch.zeros(1, 1))
    with pytest.raises(ValueError, match=r"values: expected the shape of keys \(1, 1, 2, 1\)"):
        KVCache(torch.zeros(1, 1, 2, 1), torch.zeros(1, 1, 3, 1))


def test_byte_formulas_reject_bad_arguments():
    with pytest.raises(ValueError, match="tokens: expected an integer >= 0, got -1"):
        kv_cache_bytes(-1, 4)
    with pytest.raises(TypeError, match="batch: expected an integer"):
        kv_cache_bytes(3, 4, batch=1.5)
    with pytest.raises(TypeError, match="dtype: expected a floating torch.dtype"):
        kv_cache_bytes(3, 4, dtype="float32")
    with pytest.raises(ValueError, match="n_state_tensors: expected an integer >= 1, got 0"):
        recurrent_state_bytes(4, n_state_tensors=0)
    with pytest.raises(ValueError, match="hidden: expected an integer >= 1, got 0"):
        recurrent_state_bytes(0)


def test_graph_depth_rejects_tensors_outside_a_graph():
    with pytest.raises(
        ValueError,
        match=r"output: expected a tensor .* \(a grad_fn\), got a tensor "
        r"of shape \(3,\) without one",
    ):
        graph_depth(torch.zeros(3))
    with pytest.raises(TypeError, match="output: expected a torch.Tensor, got list"):
        graph_depth([1.0])
