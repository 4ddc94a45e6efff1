"""Fused LSTM (cuDNN on a GPU) against the explicit per-step cell loop, in tokens per second.

The same ``RecurrentLayer("lstm")`` weights run both ways (``fused=True``/``False``): one
forward and backward pass over a (B, T, D) batch with B=64, T=256, D=H=512, float32, on the
course device (``default_device()``; set ``BPTT_DEVICE`` to choose). Tokens per second =
B * T / median time. The explicit loop is what exposes every h_t; this is its price.
"""

from __future__ import annotations

import torch

from benchmarks.harness import Table, log, time_call
from bptt.torch import RecurrentLayer, default_device


def _step(layer, x, device):
    output, _ = layer(x)
    output.sum().backward()
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run(quick: bool = False) -> list[Table]:
    device = default_device()
    B, T, H = (8, 32, 64) if quick else (64, 256, 512)
    layer = RecurrentLayer("lstm", H, H, device=device)
    x = torch.randn(B, T, H, generator=torch.Generator().manual_seed(0)).to(device)
    times = {}
    for fused in (True, False):
        layer.fused = fused
        log(f"  fused={fused} on {device}")
        times[fused] = time_call(lambda: _step(layer, x, device), repeats=5, warmup=2)
    rows = [
        [name, str(device), times[fused], B * T / times[fused], times[fused] / times[True]]
        for name, fused in (("fused (torch.nn.LSTM)", True), ("explicit cell loop", False))
    ]
    suffix = "_gpu" if device.type == "cuda" else ""
    return [
        Table(
            name=f"torch_lstm_fused_vs_explicit{suffix}",
            title=f"LSTM forward + backward, B={B}, T={T}, D=H={H}, float32",
            columns=["form", "device", "time (s)", "tokens/s", "time / fused time"],
            rows=rows,
            notes=f"Median of 5 runs after 2 warm-up runs; torch threads "
            f"{torch.get_num_threads()}.",
        )
    ]
