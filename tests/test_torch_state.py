"""bptt.torch.state, .contract and .data: detaching, resets, calling conventions, streams."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch_helpers import F64, randn

from bptt.torch import (
    RecurrentLayer,
    batchify,
    call_model,
    check_stream,
    detach_state,
    iter_chunks,
    map_state,
    next_token_pairs,
    reset_state,
    scalar_loss,
    to_tensors,
    token_cross_entropy,
)

# ------------------------------------------------------------------------------- states
leaves = st.integers(1, 3).map(lambda n: randn(2, n, seed=n, requires_grad=True) * 2.0)
states = st.recursive(
    st.none() | leaves,
    lambda inner: st.lists(inner, max_size=3) | st.lists(inner, max_size=3).map(tuple),
    max_leaves=6,
)


def _same_structure(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if a is None:
        return b is None
    return type(a) is type(b) and len(a) == len(b) and all(map(_same_structure, a, b))


def _tensors(state):
    found = []
    map_state(lambda t: found.append(t) or t, state)
    return found


@given(states)
def test_detach_state_keeps_structure_and_values_and_cuts_the_graph(state):
    detached = detach_state(state)
    assert _same_structure(state, detached)
    assert all(not t.requires_grad and t.grad_fn is None for t in _tensors(detached))


def test_map_state_rejects_other_types():
    with pytest.raises(TypeError, match="state: expected a tensor"):
        detach_state({"h": torch.zeros(1)})


@given(states, st.lists(st.booleans(), min_size=2, max_size=2))
def test_reset_state_zeroes_exactly_the_done_rows(state, flags):
    done = torch.tensor(flags)
    reset = reset_state(state, done)
    assert _same_structure(
        map_state(lambda t: t.detach() * 0, state), map_state(lambda t: t.detach() * 0, reset)
    )
    for before, after in zip(_tensors(state), _tensors(reset)):
        assert torch.equal(after[done], torch.zeros_like(after[done]))
        assert torch.equal(after[~done], before[~done])


def test_reset_rows_pass_no_gradient_and_none_restarts_everything():
    h = randn(3, 4, requires_grad=True)
    reset_state(h, torch.tensor([True, False, True])).sum().backward()
    assert torch.equal(h.grad[:, 0], torch.tensor([0.0, 1.0, 0.0], dtype=F64))
    assert reset_state((h, h)) is None
    with pytest.raises(ValueError, match=r"done: expected a bool tensor of shape \(B,\)"):
        reset_state(h, torch.tensor([1, 0, 1]))
    with pytest.raises(ValueError, match="state: expected tensors with B = 2 rows"):
        reset_state(h, torch.tensor([True, False]))


def test_forgetting_to_detach_fails_and_detach_state_fixes_it():
    """Truncated BPTT's pitfall: the second chunk's backward reaches into the freed first graph."""
    layer = RecurrentLayer("lstm", 2, 3, device="cpu")
    x = torch.randn(2, 8, 2, generator=torch.Generator().manual_seed(0))
    state = None
    for chunk in x.split(4, dim=1):
        out, state = layer(chunk, state)
        out.sum().backward()
        state = detach_state(state)
    state = None
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        for chunk in x.split(4, dim=1):
            out, state = layer(chunk, state)
            out.sum().backward()


# ---------------------------------------------------------------------------- contract
class _NoState(torch.nn.Module):
    def forward(self, x, state=None):
        return x


class _NoneState(torch.nn.Module):
    def forward(self, x, state=None):
        return x, None


class _WrongLength(torch.nn.Module):
    def forward(self, x, state=None):
        return x[:, :-1], 0


def test_call_model_checks_the_rnn_contract():
    x = torch.zeros(2, 3, 1)
    with pytest.raises(TypeError, match=r"model: expected model\(x, state\) to return a pair"):
        call_model(_NoState(), x, None)
    with pytest.raises(TypeError, match="model: returned new_state = None"):
        call_model(_NoneState(), x, None)
    with pytest.raises(ValueError, match=r"model: expected an output .*\(2, 3\).*got \(2, 2, 1\)"):
        call_model(_WrongLength(), x, None)
    layer = RecurrentLayer("rnn", 1, 2, device="cpu")
    out, state = call_model(layer, x, None)
    assert out.shape == (2, 3, 2) and state.shape == (2, 2)


def test_scalar_loss_and_check_stream():
    out, y = torch.zeros(2, 3), torch.ones(2, 3)
    assert float(scalar_loss(torch.nn.functional.mse_loss, out, y)) == 1.0
    with pytest.raises(ValueError, match=r"loss_fn: expected a scalar tensor.*\(2, 3\)"):
        scalar_loss(lambda o, t: (o - t) ** 2, out, y)
    assert check_stream(torch.zeros(2, 5, 1), torch.zeros(2, 5)) == (2, 5)
    with pytest.raises(
        ValueError,
        match=r"y: expected the batch and time sizes of x, "
        r"\(B, T\) = \(2, 5\), got \(3, 5\)",
    ):
        check_stream(torch.zeros(2, 5), torch.zeros(3, 5))
    with pytest.raises(ValueError, match=r"y: .*got \(2, 4\)"):
        check_stream(torch.zeros(2, 5), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"x: expected shape \(B, T, ...\)"):
        check_stream(torch.zeros(5), torch.zeros(5))
    with pytest.raises(TypeError, match="y: expected a tensor"):
        check_stream(torch.zeros(2, 5), np.zeros((2, 5)))


def test_token_cross_entropy_is_the_flat_mean_without_ignored_targets():
    logits = randn(2, 5, 7, seed=3)
    targets = torch.tensor([[0, 6, 2, -100, 1], [3, 3, -100, 5, 4]])
    keep = targets != -100
    flat = F.cross_entropy(logits[keep], targets[keep])
    assert float(token_cross_entropy(logits, targets)) == pytest.approx(float(flat), rel=1e-14)
    with pytest.raises(ValueError, match=r"targets: expected shape \(B, T\) = \(2, 5\)"):
        token_cross_entropy(logits, targets[:, :4])


# -------------------------------------------------------------------------------- data
def test_to_tensors_converts_by_kind():
    x, ids = to_tensors(np.zeros((2, 3)), np.arange(4), device="cpu")
    assert x.dtype == torch.float32 and ids.dtype == torch.int64
    (x64,) = to_tensors(np.ones(2, dtype=np.float32), dtype=F64, device="cpu")
    assert x64.dtype == F64 and x64.tolist() == [1.0, 1.0]
    with pytest.raises(TypeError, match=r"arrays\[1\]: expected a float or integer array"):
        to_tensors(np.zeros(2), np.array(["a"]), device="cpu")
    with pytest.raises(TypeError, match=r"arrays\[0\]: expected a numpy array"):
        to_tensors([1.0], device="cpu")


@given(n=st.integers(4, 60), B=st.integers(1, 5))
def test_batchify_lays_out_contiguous_streams(n, B):
    ids = np.arange(n)
    if n // B < 2:
        with pytest.raises(ValueError, match="ids: expected at least"):
            batchify(ids, B, device="cpu")
        return
    streams = batchify(ids, B, device="cpu")
    N = n // B
    assert streams.shape == (B, N) and streams.dtype == torch.int64
    for b in range(B):
        assert streams[b].tolist() == list(range(b * N, (b + 1) * N))
    x, y = next_token_pairs(streams)
    assert x.shape == y.shape == (B, N - 1)
    assert torch.equal(y, x + 1)


def test_batchify_and_pairs_reject_bad_input():
    with pytest.raises(ValueError, match="ids: expected a 1-D sequence of integer ids"):
        batchify(np.zeros(10), 2, device="cpu")
    with pytest.raises(ValueError, match="batch_size"):
        batchify(np.arange(10), 0, device="cpu")
    with pytest.raises(ValueError, match=r"streams: expected a tensor of shape \(B, N\)"):
        next_token_pairs(torch.zeros(3, 1))


@given(T=st.integers(1, 20), k=st.integers(1, 7))
def test_iter_chunks_covers_the_stream_in_order(T, k):
    x = torch.arange(2 * T).view(2, T)
    chunks = list(iter_chunks(x, x * 10, k))
    assert len(chunks) == -(-T // k)
    assert torch.equal(torch.cat([c for c, _ in chunks], dim=1), x)
    assert all(torch.equal(cy, cx * 10) for cx, cy in chunks)
    assert all(c.shape[1] == k for c, _ in chunks[:-1])
