"""Fused LSTM (oneDNN on a CPU, cuDNN on a GPU) against the explicit per-step cell loop.

The same ``RecurrentLayer("lstm")`` weights run both ways (``fused=True``/``False``): one
forward and backward pass over a (B, T, D) batch, float32, on the CPU with torch on one
thread (as every other torch table), and on a GPU too when one is lent. The two forms and a
large torch GEMM are timed in rotating turns over paired rounds; "time / fused" is the median
[quartiles] of the explicit loop's time over the fused layer's time *in the same round*.
Tokens per second = B * T / median time; GFLOP/s counts 6 B T 4H (D + H) flops per forward +
backward, set against the same-run rate of a 1024^3 product (same dtype, same threads).
"""

from __future__ import annotations

import torch

from benchmarks.harness import CPU, WALL, Table, log, measurement_meta, paired_rounds, threads
from bptt.torch import RecurrentLayer, default_device


def _step(layer, x, fused, device):
    layer.fused = fused
    layer.zero_grad(set_to_none=True)
    output, _ = layer(x)
    output.sum().backward()
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _gemm(device, n=1024):
    g = torch.Generator().manual_seed(1)
    a, b = (torch.randn(n, n, generator=g).to(device) for _ in range(2))
    out = torch.empty_like(a)

    def run():
        torch.matmul(a, b, out=out)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return run, 2 * n**3


def _rows(device, B, T, H, rounds):
    layer = RecurrentLayer("lstm", H, H, device=device)
    x = torch.randn(B, T, H, generator=torch.Generator().manual_seed(0)).to(device)
    gemm, gemm_flops = _gemm(device)
    log(f"  LSTM on {device}: {rounds} paired rounds (fused, explicit, GEMM) ...")
    paired = paired_rounds(
        {"fused": lambda: _step(layer, x, True, device),
         "explicit": lambda: _step(layer, x, False, device), "GEMM": gemm},
        reference="fused", rounds=rounds, warmup=1,
        clock=CPU if device.type == "cpu" else WALL)
    flops = 6 * B * T * 4 * H * (H + H)
    ceiling = [gemm_flops / t / 1e9 for t in paired.times["GEMM"]]
    rows = []
    for name, label in (("fused", "fused (torch.nn.LSTM)"), ("explicit", "explicit cell loop")):
        fraction = sorted(flops / t / 1e9 / c for t, c in zip(paired.times[name], ceiling))
        rows.append([label, str(device), torch.get_num_threads() if device.type == "cpu" else "",
                     paired.seconds[name], B * T / paired.seconds[name],
                     paired.ratio_text(name), flops / paired.seconds[name] / 1e9,
                     fraction[len(fraction) // 2]])
    gemm_rate = sorted(ceiling)[len(ceiling) // 2]
    return rows, paired.fairness(), gemm_rate


def run(quick: bool = False) -> list[Table]:
    B, T, H = (8, 32, 64) if quick else (32, 128, 256)
    rounds = 3 if quick else 9
    devices = [torch.device("cpu")]
    if default_device().type == "cuda":
        devices.append(default_device())
    tables = []
    for device in devices:
        before = measurement_meta()["load_average"]
        with threads(1):
            rows, fairness, gemm = _rows(device, B, T, H, rounds)
        suffix = "_gpu" if device.type == "cuda" else ""
        tables.append(Table(
            name=f"torch_lstm_fused_vs_explicit{suffix}",
            title=f"LSTM forward + backward, B={B}, T={T}, D=H={H}, float32",
            columns=["form", "device", "torch threads", "time (s)", "tokens/s",
                     "time / fused [quartiles]", "GFLOP/s", "fraction of GEMM"],
            rows=rows,
            notes=f"Median time (CPU time of the process on the CPU, steady on a shared machine; "
            f"wall time on a GPU) of {rounds} paired rounds after 1 warm-up round; the "
            "fused layer, the explicit loop and a 1024^3 GEMM timed in rotating turns; "
            "torch on 1 thread on the CPU (the same count as every other torch table).",
            meta=measurement_meta(load_before=before, fairness=fairness, threads=1,
                                  gemm_gflops={f"torch float32 {device}": gemm}),
        ))
    return tables
