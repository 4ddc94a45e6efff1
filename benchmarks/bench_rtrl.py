"""RTRL against BPTT, time per step beside exact operation counts, as the hidden size n grows.

BPTT's step costs O(B n^2) multiply-adds (plus O(B n D) for the input), RTRL's O(B n^4): it
carries dh_t/dtheta, an n x (n^2 + n D + 2 n) matrix, and multiplies it by W_hh every step.
The *law* is stated on exact counts (``bptt.rtrl.operation_counts``, multiply-adds per step
of one sequence, times B); the times illustrate it. A wall-clock exponent is fitted only
where the law holds for the clock too: over the sizes whose time per counted multiply-add is
within a factor 2 of its value at the largest n (there, arithmetic and not Python's fixed
cost per step is what the time measures). At B = 8 BPTT's arithmetic is tiny, so BPTT runs
on to n = 512 to reach that region; RTRL stops at n = 96 (its n^4 is already seconds).

Both compute the same gradient (checked before timing); at each n the two (or BPTT alone) are
timed in rotating turns over paired rounds, one thread, CPU time.
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


def law_region(sizes, seconds, counts, factor: float = 2.0) -> list[int]:
    """Indices of the sizes where seconds / count is within ``factor`` of its value at the
    largest size: where time grows like the operation count (the fit region)."""
    per_op = [s / c for s, c in zip(seconds, counts)]
    last = per_op[-1]
    region = [i for i, p in enumerate(per_op) if p <= factor * last]
    # a contiguous run ending at the largest size
    start = len(sizes) - 1
    while start - 1 in region:
        start -= 1
    return list(range(start, len(sizes)))


def run(quick: bool = False) -> list[Table]:
    with threads(1):
        return _run(quick)


def _run(quick: bool) -> list[Table]:
    batch, steps, inputs = (2, 5, 4) if quick else (8, 20, 8)
    rtrl_sizes = [4, 8, 16] if quick else [8, 16, 24, 32, 48, 64, 96]
    bptt_only = [32] if quick else [128, 256, 512]
    rounds = 3 if quick else 5
    before = measurement_meta()["load_average"]
    gemm = gemm_rate(np.float64, clock=CPU)
    rows, t_bptt, t_rtrl, fairness = [], {}, {}, {}
    for n in rtrl_sizes + bptt_only:
        args = _problem(batch, steps, inputs, n)
        fns = {"bptt": functools.partial(_bptt, *args)}
        if n in rtrl_sizes:
            fns["rtrl"] = functools.partial(rtrl.gradients, *args)
            reference, result = fns["bptt"](), fns["rtrl"]()
            error = gradcheck.max_relative_error({k: reference[k] for k in result}, result)
            if error > 1e-10:
                raise AssertionError(f"RTRL and BPTT disagree at n={n}: {error}")
        log(f"  n={n}: timing {', '.join(fns)} ...")
        paired = paired_rounds(fns, reference="bptt", rounds=rounds, warmup=1, clock=CPU)
        fairness[str(n)] = paired.fairness()
        counts = rtrl.operation_counts(n, inputs)
        t_bptt[n] = paired.seconds["bptt"] / steps
        bptt_ops = batch * counts["bptt_time"]
        row = [n, bptt_ops, t_bptt[n] * 1e6, t_bptt[n] / bptt_ops * 1e9]
        if "rtrl" in fns:
            t_rtrl[n] = paired.seconds["rtrl"] / steps
            rtrl_ops = batch * counts["rtrl_time"]
            row += [rtrl_ops, t_rtrl[n] * 1e6, t_rtrl[n] / rtrl_ops * 1e9,
                    paired.ratio_text("rtrl"), 2 * rtrl_ops / t_rtrl[n] / 1e9 / gemm]
        else:
            row += ["", "", "", "", ""]
        rows.append(row)

    def fits(times, name, count_key):
        sizes = sorted(times)
        seconds = [times[n] for n in sizes]
        counts = [rtrl.operation_counts(n, inputs)[count_key] for n in sizes]
        region = law_region(sizes, seconds, counts)
        fit_sizes = [sizes[i] for i in region]
        time_slope = (round(loglog_slope(fit_sizes, [seconds[i] for i in region]), 2)
                      if len(region) >= 2 else "n/a")
        count_slope = round(loglog_slope(fit_sizes, [counts[i] for i in region]), 2) \
            if len(region) >= 2 else "n/a"
        return [f"{name}: fit over n = {fit_sizes[0]}..{fit_sizes[-1]}", count_slope,
                time_slope, round(loglog_slope(sizes, counts), 2),
                round(loglog_slope(sizes, seconds), 2)]

    fit_rows = [fits(t_bptt, "BPTT", "bptt_time"), fits(t_rtrl, "RTRL", "rtrl_time")]
    notes = (
        f"Gradient of W_xh, W_hh, b, h0 for a tanh RNN, B={batch}, T={steps}, D={inputs}, "
        f"float64, one thread; time per step = median CPU time over {rounds} paired rounds "
        "(rotating turns) / T. Multiply-adds per step are exact counts (B times "
        "bptt.rtrl.operation_counts); 'ns / op' is time per counted multiply-add; RTRL's "
        "fraction of GEMM is 2 x its multiply-adds per second over the same-run rate of a "
        "1024^3 float64 product."
    )
    return [
        Table(
            name="rtrl_vs_bptt",
            title="RTRL vs BPTT: exact multiply-adds and time per step against the hidden size n",
            columns=["n", "BPTT madds/step", "BPTT (us/step)", "BPTT ns / op",
                     "RTRL madds/step", "RTRL (us/step)", "RTRL ns / op",
                     "RTRL / BPTT time [quartiles]", "RTRL fraction of GEMM"],
            rows=rows,
            notes=notes,
            meta=measurement_meta(
                load_before=before, threads=1, gemm_gflops={"numpy float64 1 thread": gemm},
                fairness={"interleaved": True, "rounds": rounds,
                          "same_threads": all(f["same_threads"] for f in fairness.values()),
                          "per_n": fairness}),
        ),
        Table(
            name="rtrl_vs_bptt_fits",
            title="Growth exponents in n: exact counts and times, fitted where the law holds",
            columns=["method and fit range", "count exponent (range)", "time exponent (range)",
                     "count exponent (all n)", "time exponent (all n)"],
            rows=fit_rows,
            notes="The fit range is where the time per counted multiply-add is within 2x of its "
            "value at the largest n. Outside it the time is Python's fixed cost per step, and "
            "an exponent fitted there (last column) says nothing about the algorithm. Expected: "
            "2 for BPTT, 4 for RTRL (counts: slightly below, from the lower-order n D terms).",
            meta=measurement_meta(threads=1),
        ),
    ]
