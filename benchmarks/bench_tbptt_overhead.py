"""What ``train_tbptt`` adds over the bare truncated-BPTT loop of the same chunks (issue 4).

The bare loop is the minimum any TBPTT(k, k) training needs::

    for each chunk of k steps: output, h = model(x_chunk, h); loss = mse(output, y_chunk)
                               zero_grad(); loss.backward(); optimizer.step(); h = h.detach()

``train_tbptt`` does the same work plus its bookkeeping: input checks, the update schedule,
the global and per-parameter gradient norms, the NaN/Inf check, loss and timing records.
Both run over the same stream with the same model (SGD, lr=0.01, B=32, D=32, k=35, 40
updates), in alternating order, on the course device with torch on one thread; overhead =
median(train_tbptt) / median(bare) - 1. Target: at most 10% for a realistic model; the small explicit model shows
the worst case, where every step is cheap.
"""

from __future__ import annotations

import statistics

import torch
import torch.nn.functional as F

from benchmarks.bench_torch_memory import one_torch_thread
from benchmarks.harness import Table, log, time_call
from bptt.torch import SequenceRegressor, default_device, detach_state, train_tbptt

B, D, K, UPDATES = 32, 32, 35, 40


def _bare(model, x, y, optimizer) -> None:
    state = None
    for start in range(0, x.shape[1], K):
        output, state = model(x[:, start : start + K], state)
        loss = F.mse_loss(output, y[:, start : start + K])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        state = detach_state(state)


def _ours(model, x, y, optimizer) -> None:
    train_tbptt(model, x, y, k1=K, k2=K, optimizer=optimizer, loss_fn=F.mse_loss, progress=False)


def _median_pair(model, x, y, repeats: int) -> tuple[float, float]:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    bare, ours = [], []
    for fn in (_bare, _ours):  # warm-up
        fn(model, x, y, optimizer)
    runs = [(_bare, bare), (_ours, ours)]
    for _ in range(repeats):  # alternate the order, so drifts of a shared machine hit both
        for fn, times in runs:
            times.append(time_call(lambda fn=fn: fn(model, x, y, optimizer), repeats=1, warmup=0))
        runs.reverse()
    return statistics.median(bare), statistics.median(ours)


def _row(cell: str, H: int, fused: bool, x, y, updates: int, repeats: int) -> list:
    model = SequenceRegressor(D, H, 1, readout="all", cell=cell, fused=fused, device=x.device)
    log(f"  {cell} H={H} fused={fused}")
    bare, ours = _median_pair(model, x, y, repeats)
    form = "fused" if fused else "explicit"
    return [
        f"{cell} ({form})",
        H,
        bare / updates * 1e3,
        ours / updates * 1e3,
        (ours - bare) / updates * 1e3,
        100.0 * (ours / bare - 1.0),
    ]


def run(quick: bool = False) -> list[Table]:
    device = default_device()
    updates = 4 if quick else UPDATES
    repeats = 3 if quick else 7
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, updates * K, D, generator=g).to(device)
    y = torch.randn(B, updates * K, 1, generator=g).to(device)
    configs = [("lstm", 256, True), ("lstm", 64, True), ("rnn", 64, False)]
    with one_torch_thread():
        rows = [_row(cell, H, fused, x, y, updates, repeats) for cell, H, fused in configs]
    return [
        Table(
            name="tbptt_overhead",
            title=f"train_tbptt against the bare TBPTT({K}, {K}) loop, B={B}, D={D}, "
            f"{updates} updates",
            columns=[
                "model",
                "H",
                "bare ms/update",
                "train_tbptt ms/update",
                "extra ms/update",
                "overhead %",
            ],
            rows=rows,
            notes=f"Medians of {repeats} alternating runs on {device}, torch on 1 thread.",
        )
    ]
