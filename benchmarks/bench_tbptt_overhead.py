"""What ``train_tbptt`` adds over the bare truncated-BPTT loop of the same chunks (issue 4).

The bare loop is the minimum any TBPTT(k, k) training needs::

    for each chunk of k steps: output, h = model(x_chunk, h); loss = mse(output, y_chunk)
                               zero_grad(); loss.backward(); optimizer.step(); h = h.detach()

``train_tbptt`` does the same work plus its bookkeeping: input checks, the update schedule,
the global and per-parameter gradient norms, the NaN/Inf check, loss and timing records.
Both run over the same stream with the same model (SGD, lr=0.01, B=32, D=32, k=35, 20
updates), in 21 paired rounds (alternating order, after a warm-up round), on the course device
with torch on one thread; overhead = median over rounds of time(train_tbptt) / time(bare) - 1
within the round, with its quartiles. The small explicit model shows the worst case, where
every step is cheap.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmarks.bench_torch_memory import one_torch_thread
from benchmarks.harness import (
    CPU,
    Table,
    log,
    measurement_meta,
    paired_rounds,
    torch_gemm_rate,
)
from bptt.torch import SequenceRegressor, default_device, detach_state, train_tbptt

B, D, K, UPDATES = 32, 32, 35, 20


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


def _paired(model, x, y, rounds: int):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    return paired_rounds(
        {"bare": lambda: _bare(model, x, y, optimizer), "ours": lambda: _ours(model, x, y, optimizer)},
        reference="bare", rounds=rounds, warmup=1, clock=CPU)


def _row(cell: str, H: int, fused: bool, x, y, updates: int, rounds: int):
    model = SequenceRegressor(D, H, 1, readout="all", cell=cell, fused=fused, device=x.device)
    log(f"  {cell} H={H} fused={fused}: {rounds} paired rounds")
    paired = _paired(model, x, y, rounds)
    bare, ours = paired.seconds["bare"], paired.seconds["ours"]
    low, high = paired.spread("ours")
    form = "fused" if fused else "explicit"
    row = [
        f"{cell} ({form})",
        H,
        bare / updates * 1e3,
        ours / updates * 1e3,
        (ours - bare) / updates * 1e3,
        f"{100.0 * (paired.ratio('ours') - 1.0):+.1f} [{100 * (low - 1):+.1f}, {100 * (high - 1):+.1f}]",
        "yes" if paired.ratio("ours") <= 1.10 else "no",
    ]
    return row, paired.fairness()


def run(quick: bool = False) -> list[Table]:
    device = default_device()
    updates = 4 if quick else UPDATES
    rounds = 3 if quick else 21
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, updates * K, D, generator=g).to(device)
    y = torch.randn(B, updates * K, 1, generator=g).to(device)
    configs = [("lstm", 256, True), ("lstm", 64, True), ("rnn", 64, False)]
    before = measurement_meta()["load_average"]
    with one_torch_thread():
        results = [_row(cell, H, fused, x, y, updates, rounds) for cell, H, fused in configs]
        gemm = torch_gemm_rate(clock=CPU)
    rows = [r for r, _ in results]
    fairness = {"interleaved": True, "rounds": rounds,
                "same_threads": all(f["same_threads"] for _, f in results),
                "per_model": {r[0] + f" H={r[1]}": f for r, f in results}}
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
                "overhead % [quartiles]",
                "overhead <= 10%",
            ],
            rows=rows,
            notes=f"Each of {rounds} paired rounds (after a warm-up round) runs the bare loop "
            "and train_tbptt once each, in alternating order; the overhead is the median over "
            "rounds of time(train_tbptt) / time(bare) - 1 within the round, with its quartiles. "
            f"CPU time, on {device}, torch on 1 thread.",
            meta=measurement_meta(load_before=before, fairness=fairness, threads=1,
                                  gemm_gflops={"torch float32 1 thread": gemm}),
        )
    ]
