"""Memory and time of full, truncated and checkpointed BPTT as the sequence grows (issue 4).

One model for every row: an LSTM regressor in the explicit per-step form (so the count of
saved bytes is exact), B=16, D=8, H=64, float32, a per-step MSE loss, torch on one thread
(the steps are small; a shared 2-core machine makes two threads slower, not faster).
Three ways to get the gradient over a stream of T steps:

- full BPTT: one forward pass over the T steps, one backward pass;
- TBPTT(35, 35): ``train_tbptt`` over the stream, T/35 updates (SGD with lr=0, so every run
  sees the same weights);
- checkpointed BPTT with segments of s = floor(sqrt(T)) steps.

"saved bytes" is the peak that ``SavedTensorTracker`` counts (parameters and data excluded;
for checkpointing, ``checkpoint_saved_bytes``: boundaries plus one recomputed segment);
"steps' worth" divides it by the saved bytes per step of full BPTT.
Targets: full BPTT linear in T; TBPTT flat from T=350 to 35,000; checkpointing within
3 sqrt(T) steps' worth.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from benchmarks.harness import Table, log, loglog_slope, time_call
from bptt.torch import (
    SequenceRegressor,
    checkpoint_saved_bytes,
    checkpointed_loss,
    default_device,
    saved_bytes,
    train_tbptt,
)

B, D, H, K = 16, 8, 64, 35


def _stream(T: int, device):
    g = torch.Generator().manual_seed(T)
    x = torch.randn(B, T, D, generator=g)
    y = torch.randn(B, T, 1, generator=g)
    return x.to(device), y.to(device)


def _full(model, x, y):
    F.mse_loss(model(x)[0], y).backward()


def _tbptt(model, x, y):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    train_tbptt(model, x, y, k1=K, k2=K, optimizer=optimizer, loss_fn=F.mse_loss, progress=False)


def _checkpointed(model, x, y):
    loss, _ = checkpointed_loss(model, x, y, loss_fn=F.mse_loss)
    loss.backward()


def _saved(fn, model, x, y) -> int:
    return saved_bytes(lambda: fn(model, x, y), exclude=[model, x, y])


def _seconds(fn, model, x, y) -> float:
    small = x.shape[1] <= 1000
    return time_call(lambda: fn(model, x, y), repeats=3 if small else 1, warmup=int(small))


def _growth_table(model, lengths, device) -> Table:
    rows, full_bytes, ckpt_bytes = [], [], []
    for T in lengths:
        x, y = _stream(T, device)
        log(f"  T = {T}")
        full = _saved(_full, model, x, y)
        ckpt = checkpoint_saved_bytes(model, x, y, loss_fn=F.mse_loss).peak_bytes
        full_bytes.append(full)
        ckpt_bytes.append(ckpt)
        methods = (
            ("full BPTT", _full, full),
            (f"TBPTT({K}, {K})", _tbptt, _saved(_tbptt, model, x, y)),
            (f"checkpointed, s={math.isqrt(T)}", _checkpointed, ckpt),
        )
        for name, fn, nbytes in methods:
            steps = round(nbytes / (full / T), 1)
            seconds = _seconds(fn, model, x, y)
            rows.append([T, name, nbytes, steps, round(3 * math.sqrt(T), 1), seconds])
    notes = (
        f"Fitted growth exponents of saved bytes in T: full BPTT "
        f"{loglog_slope(lengths, full_bytes):.3f}, checkpointed "
        f"{loglog_slope(lengths, ckpt_bytes):.3f} (sqrt(T) would be 0.5). "
        f"Time is one gradient over the whole stream (TBPTT: all T/{K} updates); "
        f"torch ran on 1 thread."
    )
    return Table(
        name="torch_memory_growth",
        title="Saved-for-backward bytes and time: full, truncated and checkpointed BPTT",
        columns=["T", "method", "saved bytes", "steps' worth", "3 sqrt(T)", "time (s)"],
        rows=rows,
        notes=notes,
    )


def _flatness_table(model, lengths, device) -> Table:
    rows, peaks = [], []
    for T in lengths:
        x, y = _stream(T, device)
        log(f"  TBPTT T = {T}")
        peaks.append(_saved(_tbptt, model, x, y))
        rows.append([T, T // K, peaks[-1], _seconds(_tbptt, model, x, y)])
    flat = "flat" if len(set(peaks)) == 1 else "NOT flat"
    return Table(
        name="torch_memory_tbptt_flat",
        title=f"TBPTT({K}, {K}): peak saved bytes against the stream length",
        columns=["T", "updates", "peak saved bytes", "time (s)"],
        rows=rows,
        notes=f"Peak saved bytes are {flat} in T (one window's graph at a time); torch ran on "
        "1 thread.",
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
        growth = [100, 300] if quick else [100, 1_000, 10_000]
        flat = [350, 1_050] if quick else [350, 3_500, 35_000]
        return [_growth_table(model, growth, device), _flatness_table(model, flat, device)]
