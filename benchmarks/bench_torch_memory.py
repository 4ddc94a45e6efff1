"""Memory and time of full, truncated and checkpointed BPTT as the sequence grows.

One model for every row: an LSTM regressor in the explicit per-step form (so the count of
saved bytes is exact), B=16, D=8, H=64, float32, a per-step MSE loss, torch on one thread.
Four ways to get the gradient over a stream of T steps:

- full BPTT: one forward pass over the T steps, one backward pass;
- TBPTT(35, 35): ``train_tbptt`` over the stream, T/35 updates (SGD with lr=0, so every run
  sees the same weights);
- checkpointed BPTT, segments of s = floor(sqrt(T)) steps, with torch's non-reentrant
  checkpoint (``checkpointed_loss`` by default) and with the reentrant one
  (``reentrant=True``, the papers' algorithm: no graph kept between segments).

Two memory counts, because they count different things:

- "saved bytes": the tensors autograd saves for backward, counted exactly with saved-tensor
  hooks (``SavedTensorTracker``; for checkpointing ``checkpoint_saved_bytes``: boundaries plus
  one recomputed segment). Parameters and data excluded. It does not see autograd's nodes.
- "heap": bytes the C allocator holds in use (glibc ``mallinfo2``) - tensors *and* nodes.
  Full BPTT and checkpointing: heap held after the forward pass (the graph waiting for its
  backward), plus, for checkpointing, what one segment's recomputation holds (measured as the
  heap of plain BPTT over one segment), which is their peak. TBPTT: the peak of the whole run,
  sampled at every saved tensor (``HeapPeak``).

Times: the four methods are timed in rotating turns over paired rounds after a warm-up round
(CPU time); "time / full" is the median [quartiles] of the per-round ratios.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from functools import partial

import torch
import torch.nn.functional as F

from benchmarks.harness import CPU, Table, log, loglog_slope, measurement_meta, paired_rounds
from bptt.torch import (
    SequenceRegressor,
    checkpoint_saved_bytes,
    checkpointed_loss,
    default_device,
    saved_bytes,
    train_tbptt,
)
from bptt.torch.memory import HeapPeak, heap_held

B, D, H, K = 16, 8, 64, 35


def _stream(T: int, device):
    g = torch.Generator().manual_seed(T)
    x = torch.randn(B, T, D, generator=g)
    y = torch.randn(B, T, 1, generator=g)
    return x.to(device), y.to(device)


def _full_loss(model, x, y):
    return F.mse_loss(model(x)[0], y)


def _ckpt_loss(model, x, y, reentrant=False):
    return checkpointed_loss(model, x, y, loss_fn=F.mse_loss, reentrant=reentrant)[0]


def _tbptt(model, x, y):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    train_tbptt(model, x, y, k1=K, k2=K, optimizer=optimizer, loss_fn=F.mse_loss, progress=False)


def _backward(loss_fn):
    def run(model, x, y):
        model.zero_grad(set_to_none=True)
        loss_fn(model, x, y).backward()
    return run


def _graph_heap(loss_fn, model, x, y) -> int | None:
    """Heap held after the forward pass (the graph), released by its backward afterwards."""
    held, loss = heap_held(lambda: loss_fn(model, x, y))
    model.zero_grad(set_to_none=True)
    loss.backward()
    del loss
    return held


def _tbptt_heap(model, x, y) -> int | None:
    with HeapPeak() as peak:
        _tbptt(model, x, y)
    return peak.peak_bytes


METHODS = ("full BPTT", f"TBPTT({K}, {K})", "checkpointed (non-reentrant)",
           "checkpointed (reentrant)")


def _memory(model, x, y, T):
    """(saved bytes, heap bytes) of each method at this T."""
    s = math.isqrt(T)
    exclude = [model, x, y]
    full_saved = saved_bytes(lambda: _backward(_full_loss)(model, x, y), exclude=exclude)
    tbptt_saved = saved_bytes(lambda: _tbptt(model, x, y), exclude=exclude)
    ckpt = checkpoint_saved_bytes(model, x, y, loss_fn=F.mse_loss)
    # the reentrant checkpoint keeps the same boundary states and recomputes the same segment
    segment_heap = _graph_heap(_full_loss, model, x[:, :s], y[:, :s])
    heap = {
        METHODS[0]: _graph_heap(_full_loss, model, x, y),
        METHODS[1]: _tbptt_heap(model, x, y),
        METHODS[2]: _graph_heap(_ckpt_loss, model, x, y),
        METHODS[3]: _graph_heap(partial(_ckpt_loss, reentrant=True), model, x, y),
    }
    for name in METHODS[2:]:
        if heap[name] is not None and segment_heap is not None:
            heap[name] += segment_heap
    saved = {METHODS[0]: full_saved, METHODS[1]: tbptt_saved, METHODS[2]: ckpt.peak_bytes,
             METHODS[3]: ckpt.peak_bytes}
    return saved, heap


def _growth_table(model, lengths, rounds, device) -> Table:
    rows, full_bytes, ckpt_bytes, fairness = [], [], [], {}
    before = measurement_meta()["load_average"]
    for T, n_rounds in zip(lengths, rounds):
        x, y = _stream(T, device)
        log(f"  T = {T}: memory ...")
        saved, heap = _memory(model, x, y, T)
        full_bytes.append(saved[METHODS[0]])
        ckpt_bytes.append(saved[METHODS[2]])
        fns = {
            METHODS[0]: partial(_backward(_full_loss), model, x, y),
            METHODS[1]: partial(_tbptt, model, x, y),
            METHODS[2]: partial(_backward(_ckpt_loss), model, x, y),
            METHODS[3]: partial(_backward(partial(_ckpt_loss, reentrant=True)), model, x, y),
        }
        log(f"  T = {T}: {n_rounds} paired rounds of the four methods ...")
        paired = paired_rounds(fns, reference=METHODS[0], rounds=n_rounds, warmup=1, clock=CPU)
        fairness[str(T)] = paired.fairness()
        per_step = saved[METHODS[0]] / T
        for name in METHODS:
            label = f"{name}, s={math.isqrt(T)}" if name.startswith("checkpointed") else name
            h = heap[name]
            rows.append([
                T, label, saved[name], round(saved[name] / per_step, 1),
                h if h is not None else "n/a",
                round(h / T, 1) if h is not None else "n/a",
                round(h / heap[METHODS[0]], 4) if h is not None else "n/a",
                paired.seconds[name], paired.ratio_text(name),
            ])
    notes = (
        f"Fitted growth exponents of saved bytes in T: full BPTT "
        f"{loglog_slope(lengths, full_bytes):.3f}, checkpointed "
        f"{loglog_slope(lengths, ckpt_bytes):.3f} (sqrt(T) would be 0.5). 'saved' counts the "
        "tensors autograd keeps for backward (hooks); 'heap' counts every byte the C allocator "
        "holds for the graph, nodes included (see the module docstring for each method). "
        f"Time is one gradient over the whole stream (TBPTT: all T/{K} updates), median CPU "
        f"time of {'/'.join(map(str, rounds))} paired rounds (by T) after a warm-up round; "
        "torch ran on 1 thread."
    )
    return Table(
        name="torch_memory_growth",
        title="Memory (saved tensors and heap) and time: full, truncated and checkpointed BPTT",
        columns=["T", "method", "saved bytes", "saved, steps' worth", "heap bytes",
                 "heap bytes / step", "heap / full heap", "time (s)", "time / full [quartiles]"],
        rows=rows,
        notes=notes,
        meta=measurement_meta(
            load_before=before, threads=1,
            fairness={"interleaved": True, "rounds": min(rounds),
                      "same_threads": all(f["same_threads"] for f in fairness.values()),
                      "per_T": fairness}),
    )


def _flatness_table(model, lengths, rounds, device) -> Table:
    rows, peaks = [], []
    before = measurement_meta()["load_average"]
    for T in lengths:
        x, y = _stream(T, device)
        log(f"  TBPTT T = {T}")
        run_once = partial(_tbptt, model, x, y)
        peaks.append(saved_bytes(run_once, exclude=[model, x, y]))
        heap = _tbptt_heap(model, x, y)
        paired = paired_rounds({"tbptt": run_once}, reference="tbptt",
                               rounds=rounds, warmup=1, clock=CPU)
        seconds = paired.seconds["tbptt"]
        rows.append([T, T // K, peaks[-1], heap if heap is not None else "n/a", seconds,
                     seconds / T * 1e6])
    flat = "flat" if len(set(peaks)) == 1 else "NOT flat"
    return Table(
        name="torch_memory_tbptt_flat",
        title=f"TBPTT({K}, {K}): peak saved bytes and heap against the stream length",
        columns=["T", "updates", "peak saved bytes", "peak heap bytes", "time (s)",
                 "us / step"],
        rows=rows,
        notes=f"Peak saved bytes are {flat} in T (one window's graph at a time); the heap peak "
        f"is sampled at every saved tensor. Median CPU time of {rounds} runs after a warm-up "
        "run; torch ran on 1 thread.",
        meta=measurement_meta(load_before=before, threads=1),
    )


@contextmanager
def one_torch_thread():
    """Run torch's CPU ops on one thread inside the block (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run(quick: bool = False) -> list[Table]:
    device = default_device()
    with one_torch_thread():
        model = SequenceRegressor(D, H, 1, readout="all", cell="lstm", fused=False, device=device)
        growth = [100, 300] if quick else [100, 1_000, 5_000]
        rounds = [2, 2] if quick else [7, 5, 3]
        flat = [350, 1_050] if quick else [350, 3_500, 17_500]
        return [_growth_table(model, growth, rounds, device),
                _flatness_table(model, flat, 2 if quick else 3, device)]
