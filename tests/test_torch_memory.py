"""bptt.torch.memory and .checkpoint: saved-for-backward bytes and checkpointed BPTT."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch_helpers import F64, TOL, max_rel, randn

from bptt.torch import (
    CELLS,
    SavedTensorTracker,
    SequenceRegressor,
    checkpoint_saved_bytes,
    checkpointed_loss,
    cuda_peak_bytes,
    saved_bytes,
    train_tbptt,
)

mse = F.mse_loss


def _model(cell="rnn", fused=False, H=8, dtype=torch.float32):
    return SequenceRegressor(
        2, H, 1, readout="all", cell=cell, fused=fused, dtype=dtype, device="cpu"
    )


def _data(T, B=3, dtype=torch.float32):
    g = torch.Generator().manual_seed(T)
    return (
        torch.randn(B, T, 2, generator=g, dtype=dtype),
        torch.randn(B, T, 1, generator=g, dtype=dtype),
    )


def _full_bptt_bytes(model, T):
    x, y = _data(T)
    return saved_bytes(lambda: mse(model(x)[0], y).backward(), exclude=[model, x, y])


# ------------------------------------------------------------------------------ tracker
def test_tracker_counts_each_storage_once_and_releases_after_backward():
    w = torch.ones(4, requires_grad=True)
    with SavedTensorTracker() as tracker:
        h = torch.tanh(w * 2.0)  # tanh saves its output h
        z = (h * h).sum()  # mul saves h twice: the same storage
    assert tracker.peak_bytes == tracker.live_bytes == h.untyped_storage().nbytes() == 16
    assert tracker.n_saved == 3 and tracker.total_bytes == 16
    z.backward()
    assert tracker.live_bytes == 0 and tracker.peak_bytes == 16
    assert torch.allclose(w.grad, 2 * 2 * h * (1 - h**2))


def test_a_saved_view_charges_its_whole_storage_unless_excluded():
    big = torch.randn(100, 10)
    w = torch.ones(10, requires_grad=True)
    assert saved_bytes(lambda: (big[:1] * w).sum()) == big.untyped_storage().nbytes()
    assert saved_bytes(lambda: (big[:1] * w).sum(), exclude=[big]) == 0
    layer = torch.nn.Linear(10, 1)
    x = torch.randn(3, 10, requires_grad=True)
    assert saved_bytes(lambda: layer(x).sum(), exclude=[layer]) == x.untyped_storage().nbytes()
    with pytest.raises(TypeError, match="exclude: expected tensors or modules"):
        SavedTensorTracker(exclude=["weights"])


@pytest.mark.parametrize("cell", CELLS)
def test_full_bptt_saved_bytes_grow_exactly_linearly_in_T(cell):
    model = _model(cell)
    sizes = [_full_bptt_bytes(model, T) for T in (5, 10, 15, 20)]
    steps = {b - a for a, b in pairwise(sizes)}
    assert len(steps) == 1 and steps.pop() > 0


def _tbptt_peak(model, T):
    x, y = _data(T)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    return saved_bytes(
        lambda: train_tbptt(
            model, x, y, k1=35, k2=35, loss_fn=mse, optimizer=optimizer, progress=False
        ),
        exclude=[model, x, y],
    )


def test_truncated_bptt_peak_is_flat_in_T():
    model = _model("lstm")
    # (T = 35 would differ: its only chunk is x itself, not a strided copy of a slice)
    peaks = [_tbptt_peak(model, T) for T in (70, 105, 210)]
    assert peaks[0] == peaks[1] == peaks[2] > 0


def test_keeping_the_graph_across_chunks_grows_memory_every_chunk():
    """Truncated BPTT's other pitfall: no detach + retain_graph keeps every chunk's graph alive."""
    model = _model("rnn")
    x, y = _data(20)
    live = []
    with SavedTensorTracker(exclude=[model, x, y]) as tracker:
        state = None
        for xc, yc in zip(x.split(5, dim=1), y.split(5, dim=1)):
            out, state = model(xc, state)
            mse(out, yc).backward(retain_graph=True)
            live.append(tracker.live_bytes)
    growth = [b - a for a, b in pairwise(live)]
    assert live[0] > 0 and growth[0] > 0 and len(set(growth)) == 1


# --------------------------------------------------------------------------- checkpoint
@given(
    cell=st.sampled_from(CELLS),
    fused=st.booleans(),
    T=st.integers(1, 12),
    segment=st.integers(1, 14),
    seed=st.integers(0, 99),
)
def test_checkpointed_gradient_is_plain_bptt(cell, fused, T, segment, seed):
    model = SequenceRegressor(
        2, 3, 2, readout="all", cell=cell, fused=fused, seed=seed, dtype=F64, device="cpu"
    )
    x, y = randn(2, T, 2, seed=seed), randn(2, T, 2, seed=seed + 1)
    params = list(model.parameters())
    out, final = model(x)
    plain = torch.autograd.grad(mse(out, y), params)
    loss, state = checkpointed_loss(model, x, y, loss_fn=mse, segment=segment)
    assert float(loss.detach()) == pytest.approx(float(mse(out, y).detach()), rel=1e-12)
    assert max_rel(list(torch.autograd.grad(loss, params)), list(plain)) <= TOL
    flat = list(state) if isinstance(state, tuple) else [state]
    assert max_rel(flat, list(final) if isinstance(final, tuple) else [final]) <= TOL


def test_checkpointing_changes_nothing_but_memory():
    model = _model("lstm", dtype=F64)
    x, y = _data(17, dtype=F64)
    state0 = (randn(3, 8, seed=1), randn(3, 8, seed=2))
    grads = []
    for use_checkpoint in (True, False):
        loss, _ = checkpointed_loss(
            model, x, y, loss_fn=mse, segment=4, state=state0, use_checkpoint=use_checkpoint
        )
        grads.append(torch.autograd.grad(loss, list(model.parameters())))
    assert all(torch.equal(a, b) for a, b in zip(*grads))
    with pytest.raises(ValueError, match="segment: expected an integer >= 1"):
        checkpointed_loss(model, x, y, loss_fn=mse, segment=0)
    with pytest.raises(TypeError, match="segment"):
        checkpointed_loss(model, x, y, loss_fn=mse, segment=2.0)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_checkpoint_memory_is_boundaries_plus_one_segment(cell):
    model = _model(cell)
    T, s, B, H = 100, 10, 3, 8
    x, y = _data(T)
    memory = checkpoint_saved_bytes(model, x, y, loss_fn=mse, segment=s)
    assert all(p.grad is None for p in model.parameters())
    tensors_per_state = 2 if cell == "lstm" else 1
    # T/s segments; the first starts from None, the other T/s - 1 boundaries are kept
    assert memory.kept_bytes == (T // s - 1) * tensors_per_state * B * H * 4
    one_segment = saved_bytes(
        lambda: mse(model(x[:, :s])[0], y[:, :s]).backward(), exclude=[model, x, y]
    )
    assert memory.segment_bytes == one_segment
    assert memory.peak_bytes == memory.kept_bytes + memory.segment_bytes


@pytest.mark.parametrize("T", [64, 256])
def test_checkpoint_at_sqrt_T_stays_within_three_sqrt_T_steps(T):
    model = _model("lstm")
    per_step = _full_bptt_bytes(model, T) / T
    x, y = _data(T)
    memory = checkpoint_saved_bytes(model, x, y, loss_fn=mse)  # s = sqrt(T)
    assert memory.peak_bytes <= 3 * math.sqrt(T) * per_step
    assert memory.peak_bytes < _full_bptt_bytes(model, T) / 4


def test_cuda_peak_needs_a_cuda_device():
    with pytest.raises(ValueError, match="device: expected a CUDA device, got cpu"):
        cuda_peak_bytes(lambda: None, "cpu")


def test_saved_bytes_of_a_non_callable_names_the_argument():
    with pytest.raises(TypeError, match=r"fn: expected a callable without arguments.*got int 3"):
        saved_bytes(3)


# ------------------------------------------------------------------------------ heap and reentrant
@pytest.mark.parametrize("cell", ["rnn", "lstm"])
@pytest.mark.parametrize("segment", [1, 4, 7])
def test_reentrant_checkpoint_gives_the_plain_gradient(cell, segment):
    model = _model(cell, dtype=F64)
    x, y = _data(17, dtype=F64)
    params = list(model.parameters())
    plain = torch.autograd.grad(mse(model(x)[0], y), params)
    loss, _ = checkpointed_loss(model, x, y, loss_fn=mse, segment=segment, reentrant=True)
    model.zero_grad(set_to_none=True)
    loss.backward()
    assert all(p.grad is not None for p in params), "a segment sent no gradient"
    assert max_rel([p.grad for p in params], list(plain)) <= TOL


def test_heap_held_sees_the_nodes_saved_bytes_miss():
    from bptt.torch.memory import HeapPeak, heap_held, heap_in_use

    if heap_in_use() is None:
        pytest.skip("no glibc mallinfo2 here")
    block, _ = heap_held(lambda: torch.empty(2_000_000, dtype=torch.uint8))
    assert 2_000_000 <= block < 2_100_000
    model = _model("lstm", H=16)
    x, y = _data(400)
    saved = _full_bptt_bytes(model, 400)
    held, loss = heap_held(lambda: mse(model(x)[0], y))
    assert held > saved  # the graph's nodes and outputs come on top of the saved tensors
    loss.backward()
    with HeapPeak() as peak:
        mse(model(x)[0], y).backward()
    assert peak.peak_bytes >= saved
    with pytest.raises(TypeError, match="fn: expected a callable"):
        heap_held(3)
