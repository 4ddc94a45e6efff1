"""The linear RNN's dL/dh_t: the backward recursion against the explicit sum of powers.

The caching argument of "Closed-form gradients of a linear RNN", measured: the recursion dL/dh_t = W_hh^T dL/dh_{t+1} +
W_hy^T dL/do_t reuses dL/dh_{t+1} and costs O(B T H^2); the closed form
sum_{i=t}^{T} (W_hh^T)^{T-i} W_hy^T dL/do_{T+t-i} evaluated term by term costs
O(T H^3 + B T^2 H^2). The fitted log-log slopes against T should approach 1 and 2.
"""

from __future__ import annotations

import functools

import numpy as np

from benchmarks.harness import (
    CPU,
    Table,
    gemm_rate,
    log,
    loglog_slope,
    measurement_meta,
    paired_rounds,
    threads,
)
from bptt import gradcheck, linear, spectral


def _problem(batch, steps, hidden, outputs, seed=0):
    rng = np.random.default_rng(seed)
    W_hh = spectral.scale_to_spectral_radius(rng.standard_normal((hidden, hidden)), 0.9)
    W_hy = rng.standard_normal((outputs, hidden)) / np.sqrt(hidden)
    do = rng.standard_normal((batch, steps, outputs)) / (batch * steps)
    return do, W_hh, W_hy


def run(quick: bool = False) -> list[Table]:
    with threads(1):
        return _run(quick)


def _run(quick: bool) -> list[Table]:
    batch, hidden, outputs = (2, 8, 2) if quick else (4, 32, 8)
    lengths = [10, 20, 40] if quick else [50, 100, 200, 400, 800]
    repeats = 3 if quick else 5
    rows, t_rec, t_pow, fairness = [], [], [], {}
    before = measurement_meta()["load_average"]
    for steps in lengths:
        args = _problem(batch, steps, hidden, outputs)
        recursion = functools.partial(linear.hidden_gradients, *args)
        power_sum = functools.partial(linear.hidden_gradients_power_sum, *args)
        error = gradcheck.relative_error(recursion(), power_sum())
        if error > 1e-10:
            raise AssertionError(f"recursion and power sum disagree at T={steps}: {error}")
        log(f"  T={steps}: timing recursion and power sum ...")
        paired = paired_rounds({"recursion": recursion, "power_sum": power_sum},
                               reference="recursion", rounds=repeats, warmup=1, clock=CPU)
        fairness[str(steps)] = paired.fairness()
        times = paired.seconds
        t_rec.append(times["recursion"])
        t_pow.append(times["power_sum"])
        rows.append(
            [steps, t_rec[-1] * 1e3, t_pow[-1] * 1e3, t_pow[-1] / t_rec[-1], f"{error:.1e}"]
        )
    rows.append(
        [
            "fitted exponent",
            round(loglog_slope(lengths, t_rec), 2),
            round(loglog_slope(lengths, t_pow), 2),
            "",
            "",
        ]
    )
    notes = (
        f"dL/dh_t for every t, B={batch}, H={hidden}, Q={outputs}, W_hh with spectral radius "
        f"0.9; one thread; median CPU time of {repeats} paired rounds (rotating turns). The last row is the slope of "
        "log(time) against log(T) over all lengths (expected: 1 for the recursion, 2 for the "
        "power sum once T is large enough that arithmetic, not Python overhead, dominates)."
    )
    return [
        Table(
            name="linear_recursion_vs_power_sum",
            title="Linear RNN: backward recursion vs explicit power sum",
            columns=["T", "recursion (ms)", "power sum (ms)", "power sum / recursion", "rel. diff"],
            rows=rows,
            notes=notes,
            meta=measurement_meta(
                load_before=before, threads=1,
                gemm_gflops={"numpy float64 1 thread": gemm_rate(np.float64, clock=CPU)},
                fairness={"interleaved": True, "rounds": repeats,
                          "same_threads": all(f["same_threads"] for f in fairness.values())}),
        )
    ]
