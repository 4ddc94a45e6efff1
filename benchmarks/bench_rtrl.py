"""RTRL against BPTT, time per step, as the hidden size n grows ("The cost of BPTT").

BPTT's step costs O(B n^2) (plus O(B n D) for the input) and RTRL's O(B n^4): it carries
dh_t/dtheta, an n x (n^2 + n D + 2 n) matrix, and multiplies it by W_hh every step. Both
compute the same gradient (checked before timing); the fitted log-log slopes against n show
the two growth laws (approaching 2 and 4 once the arithmetic outweighs Python's overhead).
"""

from __future__ import annotations

import functools

import numpy as np

from benchmarks.harness import CPU, Table, log, loglog_slope, threads, time_interleaved
from bptt import gradcheck, rnn, rtrl


def _problem(batch, steps, inputs, hidden, seed=0):
    rng = np.random.default_rng(seed)
    params = rnn.init_params(inputs, hidden, 1, rng=rng)
    x = rng.standard_normal((batch, steps, inputs))
    h0 = np.zeros((batch, hidden))
    dh = rng.standard_normal((batch, steps, hidden))
    return x, h0, params["W_xh"], params["W_hh"], params["b"], dh


def _bptt(x, h0, W_xh, W_hh, b, dh):
    _, cache = rnn.forward(x, h0, W_xh, W_hh, b)
    return rnn.backward(dh, cache)


def run(quick: bool = False) -> list[Table]:
    with threads(1):
        return _run(quick)


def _run(quick: bool) -> list[Table]:
    batch, steps, inputs = (2, 5, 4) if quick else (8, 20, 8)
    sizes = [4, 8, 16] if quick else [8, 16, 24, 32, 48, 64, 96]
    repeats = 3 if quick else 5
    rows, t_bptt, t_rtrl = [], [], []
    for n in sizes:
        args = _problem(batch, steps, inputs, n)
        by_bptt = functools.partial(_bptt, *args)
        by_rtrl = functools.partial(rtrl.gradients, *args)
        reference, result = by_bptt(), by_rtrl()
        error = gradcheck.max_relative_error({k: reference[k] for k in result}, result)
        if error > 1e-10:
            raise AssertionError(f"RTRL and BPTT disagree at n={n}: {error}")
        log(f"  n={n}: timing BPTT and RTRL ...")
        times = time_interleaved(
            {"bptt": by_bptt, "rtrl": by_rtrl}, repeats=repeats, warmup=1, clock=CPU
        )
        t_bptt.append(times["bptt"] / steps)
        t_rtrl.append(times["rtrl"] / steps)
        rows.append([n, t_bptt[-1] * 1e6, t_rtrl[-1] * 1e6, t_rtrl[-1] / t_bptt[-1]])
    large = slice(len(sizes) // 2, None)  # the larger half, where arithmetic dominates
    rows.append(
        [
            "fitted exponent (all n)",
            round(loglog_slope(sizes, t_bptt), 2),
            round(loglog_slope(sizes, t_rtrl), 2),
            "",
        ]
    )
    rows.append(
        [
            f"fitted exponent (n >= {sizes[large][0]})",
            round(loglog_slope(sizes[large], t_bptt[large]), 2),
            round(loglog_slope(sizes[large], t_rtrl[large]), 2),
            "",
        ]
    )
    notes = (
        f"Gradient of W_xh, W_hh, b, h0 for a tanh RNN, B={batch}, T={steps}, D={inputs}, "
        f"float64, one thread; time per step = median CPU time over {repeats} runs (timed in turns) / T. "
        "Expected slopes: 2 for BPTT, 4 for RTRL, asymptotically."
    )
    return [
        Table(
            name="rtrl_vs_bptt",
            title="RTRL vs BPTT: time per step against the hidden size n",
            columns=["n", "BPTT (us/step)", "RTRL (us/step)", "RTRL / BPTT"],
            rows=rows,
            notes=notes,
        )
    ]
