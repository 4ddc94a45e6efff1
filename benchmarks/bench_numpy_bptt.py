"""Batched numpy BPTT against fair torch opponents, a per-sample textbook loop and the machine.

The same tanh RNN forward + backward (gradients of x, h0, W_xh, W_hh, b from a given dL/dh_t,
as :func:`bptt.rnn.backward` takes it) at B=32, T=100, D=H=128, in float32 and float64:

- ``numpy``: ``bptt.rnn.forward`` + ``bptt.rnn.backward``, the batch-first code the chapter
  "BPTT from scratch in numpy" shows;
- ``numpy time-major``: ``bptt.rnn.forward_time_major`` + ``backward_time_major``, the same
  loop on contiguous (T+1, B, H) buffers (x and dh stored time-major, as torch's RNNs expect);
- ``torch loop (expert)``: the model as a torch user writes it - the input projection of all
  steps hoisted into one product, the steps taken with ``unbind`` - differentiated by autograd;
- ``torch loop (per-step projection)``: the same with ``x[:, t] @ W_xh.T`` inside the loop, the
  opponent earlier tables used (kept so the difference is visible);
- ``torch.nn.RNN``: torch's fused layer (one call for the whole sequence);
- ``textbook``: one sample at a time, one step at a time, column vectors, states in a dict.

Fairness: in each row numpy's BLAS and torch are set to the same thread count (and the harness
records the counts each contender actually ran with); all contenders and a large GEMM are timed
in rotating turns over paired rounds; each contender's time is divided by numpy's time *of the
same round*, and the table gives the median of these paired ratios with their quartiles. The
one-thread rows use CPU time (steady on a shared machine), the multi-thread rows wall time.

Speed against the machine: attained GFLOP/s counts 6 B T H (D + H) flops per forward +
backward; the ceiling is the same-run rate of a (1024 x 1024) @ (1024 x 1024) product in the
same dtype and threads (numpy's for the numpy rows, torch's for the torch rows).

A second table grows D = H from 16 to 256 (one thread, float64); a third takes one step of
the time-major loop apart (product, add, tanh) to show where the time the GEMM rate does not
explain goes.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from benchmarks.harness import (
    CPU,
    WALL,
    Table,
    gemm_rate,
    log,
    measurement_meta,
    paired_rounds,
    threads,
    time_call,
)
from bptt import gradcheck, rnn

_NAMES = ("x", "h0", "W_xh", "W_hh", "b")


def textbook_forward_backward(x, h0, W_xh, W_hh, b, dh):
    """Per-sample, per-step BPTT as textbooks write it: column vectors, states in a dict."""
    grads = {"x": np.zeros_like(x), "h0": np.zeros_like(h0), "W_xh": np.zeros_like(W_xh),
             "W_hh": np.zeros_like(W_hh), "b": np.zeros_like(b)}
    bias = b.reshape(-1, 1)
    for n in range(x.shape[0]):
        h = {-1: h0[n].reshape(-1, 1)}
        xs = {}
        for t in range(x.shape[1]):
            xs[t] = x[n, t].reshape(-1, 1)
            h[t] = np.tanh(W_xh @ xs[t] + W_hh @ h[t - 1] + bias)
        dh_next = np.zeros_like(bias)
        for t in reversed(range(x.shape[1])):
            da = (dh[n, t].reshape(-1, 1) + dh_next) * (1.0 - h[t] * h[t])
            grads["W_xh"] += da @ xs[t].T
            grads["W_hh"] += da @ h[t - 1].T
            grads["b"] += da[:, 0]
            grads["x"][n, t] = (W_xh.T @ da)[:, 0]
            dh_next = W_hh.T @ da
        grads["h0"][n] = dh_next[:, 0]
    return grads


def numpy_forward_backward(x, h0, W_xh, W_hh, b, dh):
    _, cache = rnn.forward(x, h0, W_xh, W_hh, b)
    return rnn.backward(dh, cache)


def _time_major_runner(x, h0, W_xh, W_hh, b, dh):
    """The time-major fast path on x, dh stored time-major; returns batch-first gradients
    only when asked (the check), so the timed call does no transposes."""
    x_tm = np.ascontiguousarray(np.swapaxes(x, 0, 1))
    dh_tm = np.ascontiguousarray(np.swapaxes(dh, 0, 1))

    def run(batch_first: bool = False):
        _, cache = rnn.forward_time_major(x_tm, h0, W_xh, W_hh, b)
        grads = rnn.backward_time_major(dh_tm, cache)
        if batch_first:
            grads["x"] = np.swapaxes(grads["x"], 0, 1)
        return grads

    return run


def _torch_loop(torch, arrays, *, hoisted: bool):
    """Autograd through a Python loop of torch ops, on tensors made once from ``arrays``."""
    *inputs, dh = (torch.from_numpy(a) for a in arrays)
    leaves = [a.clone().requires_grad_(True) for a in inputs]

    def run():
        for leaf in leaves:
            leaf.grad = None
        x, h, w_xh, w_hh, bias = leaves
        states = []
        if hoisted:  # as a torch user writes it: one product for every step's input part
            w_hh_t = w_hh.T
            for pre_t in torch.unbind(torch.addmm(bias, x.reshape(-1, x.shape[-1]), w_xh.T)
                                      .reshape(x.shape[0], x.shape[1], -1), dim=1):
                h = torch.tanh(torch.addmm(pre_t, h, w_hh_t))
                states.append(h)
        else:
            for t in range(x.shape[1]):
                h = torch.tanh(x[:, t] @ w_xh.T + h @ w_hh.T + bias)
                states.append(h)
        torch.autograd.backward(torch.stack(states, dim=1), dh)
        return {name: leaf.grad.numpy() for name, leaf in zip(_NAMES, leaves)}

    return run


def _torch_fused(torch, arrays):
    """torch.nn.RNN (tanh, batch first) with bias_ih = b, bias_hh = 0, the same weights."""
    x, h0, W_xh, W_hh, b, dh = arrays
    dtype = torch.float32 if x.dtype == np.float32 else torch.float64
    layer = torch.nn.RNN(W_xh.shape[1], W_hh.shape[0], batch_first=True, dtype=dtype)
    with torch.no_grad():
        layer.weight_ih_l0.copy_(torch.from_numpy(W_xh))
        layer.weight_hh_l0.copy_(torch.from_numpy(W_hh))
        layer.bias_ih_l0.copy_(torch.from_numpy(b))
        layer.bias_hh_l0.zero_()
    x_t = torch.from_numpy(x).clone().requires_grad_(True)
    h0_t = torch.from_numpy(h0).clone()[None].requires_grad_(True)
    dh_t = torch.from_numpy(dh)

    def run():
        layer.zero_grad(set_to_none=True)
        x_t.grad = h0_t.grad = None
        out, _ = layer(x_t, h0_t)
        out.backward(dh_t)
        return {"x": x_t.grad.numpy(), "h0": h0_t.grad[0].numpy(),
                "W_xh": layer.weight_ih_l0.grad.numpy(), "W_hh": layer.weight_hh_l0.grad.numpy(),
                "b": layer.bias_ih_l0.grad.numpy()}

    return run


def _gemm_runner(module, dtype, n=1024):
    """One large square product (2 n^3 flops) in numpy or torch: the ceiling, timed in turn."""
    rng = np.random.default_rng(1)
    a, b = (rng.standard_normal((n, n)).astype(dtype) for _ in range(2))
    if module == "numpy":
        out = np.empty_like(a)
        return lambda: np.matmul(a, b, out=out), 2 * n**3
    import torch

    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    tout = torch.empty_like(ta)
    return lambda: torch.matmul(ta, tb, out=tout), 2 * n**3


def _problem(batch, steps, size, dtype, seed=0):
    rng = np.random.default_rng(seed)
    params = rnn.init_params(size, size, 1, rng=rng, dtype=dtype)
    x = rng.standard_normal((batch, steps, size)).astype(dtype)
    h0 = 0.1 * rng.standard_normal((batch, size)).astype(dtype)
    dh = rng.standard_normal((batch, steps, size)).astype(dtype)
    return x, h0, params["W_xh"], params["W_hh"], params["b"], dh


def _check_agreement(arrays, runners) -> dict[str, float]:
    """Every implementation gives the gradient of bptt.rnn before anything is timed."""
    reference = numpy_forward_backward(*arrays)
    tolerance = 1e-4 if arrays[0].dtype == np.float32 else 1e-12
    errors = {}
    for name, run_once in runners.items():
        errors[name] = gradcheck.max_relative_error(reference, run_once())
        if errors[name] > tolerance:
            raise AssertionError(f"{name} disagrees with bptt.rnn ({arrays[0].dtype}): "
                                 f"{errors[name]}")
    return errors


def _flops(batch: int, steps: int, size: int) -> int:
    """Multiply-adds x 2 of one forward + backward at D = H = size: 6 B T H (D + H)."""
    return 6 * batch * steps * size * (size + size)


CONTENDERS = ("numpy", "numpy time-major", "torch loop (expert)",
              "torch loop (per-step projection)", "torch.nn.RNN", "textbook")


def _measure(torch, count, batch, steps, size, rounds, warmup, textbook=True):
    """Rows for float32 and float64 at one thread count, and the fairness record."""
    rows, fairness, gemm = [], {}, {}
    clock = CPU if count == 1 else WALL
    for dtype in (np.float32, np.float64):
        arrays = _problem(batch, steps, size, dtype)
        runners = {
            "numpy": functools.partial(numpy_forward_backward, *arrays),
            "numpy time-major": _time_major_runner(*arrays),
            "torch loop (expert)": _torch_loop(torch, arrays, hoisted=True),
            "torch loop (per-step projection)": _torch_loop(torch, arrays, hoisted=False),
            "torch.nn.RNN": _torch_fused(torch, arrays),
            "textbook": functools.partial(textbook_forward_backward, *arrays),
        }
        if not textbook:
            del runners["textbook"]
        checks = dict(runners)
        checks["numpy time-major"] = functools.partial(runners["numpy time-major"], True)
        errors = _check_agreement(arrays, {k: f for k, f in checks.items() if k != "numpy"})
        gemm_np, gemm_flops = _gemm_runner("numpy", dtype)
        gemm_torch, _ = _gemm_runner("torch", dtype)
        timed = dict(runners, **{"GEMM numpy": gemm_np, "GEMM torch": gemm_torch})
        log(f"  {count} thread(s), {dtype.__name__}: {rounds} paired rounds of "
            f"{len(timed)} contenders ...")
        paired = paired_rounds(timed, reference="numpy", rounds=rounds, warmup=warmup,
                               clock=clock)
        fairness[dtype.__name__] = paired.fairness()
        flops = _flops(batch, steps, size)
        ceilings = {}
        for side in ("numpy", "torch"):
            ceilings[side] = [gemm_flops / t / 1e9 for t in paired.times[f"GEMM {side}"]]
            gemm[f"{side} {dtype.__name__} {count} thread(s)"] = float(np.median(ceilings[side]))
        for name in runners:
            side = "torch" if name.startswith("torch") else "numpy"
            # attained rate over the GEMM rate of the same round, then the median
            fractions = [flops / t / 1e9 / c for t, c in zip(paired.times[name], ceilings[side])]
            rows.append([
                count, "CPU" if clock is CPU else "wall", dtype.__name__, name,
                paired.seconds[name] * 1e3, paired.ratio_text(name),
                flops / paired.seconds[name] / 1e9, float(np.median(fractions)),
                f"{errors.get(name, 0.0):.1e}",
            ])
    return rows, fairness, gemm


def _size_rows(batch, steps, sizes, rounds):
    rows = []
    with threads(1):
        for size in sizes:
            arrays = _problem(batch, steps, size, np.float64)
            log(f"  D = H = {size}: timing numpy, time-major and textbook ...")
            paired = paired_rounds(
                {"numpy": functools.partial(numpy_forward_backward, *arrays),
                 "time-major": _time_major_runner(*arrays),
                 "textbook": functools.partial(textbook_forward_backward, *arrays)},
                reference="numpy", rounds=rounds, warmup=1, clock=CPU)
            rate = _flops(batch, steps, size) / paired.seconds["numpy"] / 1e9
            rows.append([size, paired.seconds["numpy"] * 1e3,
                         paired.seconds["time-major"] * 1e3, paired.seconds["textbook"] * 1e3,
                         paired.ratio_text("textbook"), rate])
    return rows


def _step_cost_rows(batch, size, repeats):
    """Microseconds of the pieces of one time-major step (1 thread, CPU time)."""
    rows = []
    with threads(1):
        for dtype in (np.float32, np.float64):
            rng = np.random.default_rng(0)
            h = rng.standard_normal((batch, size)).astype(dtype)
            W = rng.standard_normal((size, size)).astype(dtype)
            out = np.empty_like(h)
            pieces = {
                "product h_{t-1} W_hh^T": functools.partial(np.matmul, h, W, out=out),
                "add the projection": functools.partial(np.add, out, h, out=out),
                "tanh": functools.partial(np.tanh, h, out=out),
                "multiply (backward)": functools.partial(np.multiply, h, h, out=out),
            }
            times = {k: time_call(f, repeats=repeats, warmup=5, clock=CPU)
                     for k, f in pieces.items()}
            product = times["product h_{t-1} W_hh^T"]
            for name, seconds in times.items():
                rows.append([dtype.__name__, name, seconds * 1e6, seconds / product,
                             2 * batch * size * size / product / 1e9 if name.startswith("product")
                             else ""])
    return rows


def run(quick: bool = False) -> list[Table]:
    import torch

    batch, steps, size = (4, 10, 16) if quick else (32, 100, 128)
    rounds, warmup = (3, 1) if quick else (11, 1)
    thread_counts = [1] if quick else sorted({1, os.cpu_count() or 1})
    rows, fairness, gemm = [], {}, {}
    load_before = measurement_meta()["load_average"]
    for count in thread_counts:
        with threads(count):
            r, f, g = _measure(torch, count, batch, steps, size, rounds, warmup,
                               textbook=count == 1)
        rows += r
        gemm.update(g)
        fairness.update({f"{count} thread(s) {k}": v for k, v in f.items()})
    meta = measurement_meta(
        load_before=load_before, gemm_gflops=gemm, rounds=rounds,
        fairness={"rounds": rounds, "same_threads": all(f["same_threads"] for f in fairness.values()),
                  "interleaved": True, "per_row": fairness},
    )
    notes = (
        f"Forward + backward of a tanh RNN, B={batch}, T={steps}, D=H={size}. Each row: median "
        f"of {rounds} paired rounds after {warmup} warm-up round(s); all contenders of a "
        "dtype and a large GEMM in numpy and in torch are timed in rotating turns; "
        "'time / numpy' is the median [quartiles] of time / numpy's time in the same round. "
        "numpy's BLAS and torch use the same thread count in a row (recorded per contender); "
        "one-thread rows report CPU time, multi-thread rows wall time. GFLOP/s counts "
        "6 B T H (D + H) flops; 'fraction of GEMM' divides it by the same round's rate of a "
        "1024^3 product in the same library, dtype and threads. All give the same gradient "
        "(max relative error to bptt.rnn in the last column, checked before timing). The "
        "textbook loop runs at one thread only (it is matrix-vector products, which gain "
        "nothing from a second thread)."
    )
    sizes = (8, 16) if quick else (16, 32, 64, 128, 256)
    size_rows = _size_rows(batch, steps, sizes, rounds=3 if quick else 5)
    step_rows = _step_cost_rows(batch, size, repeats=20 if quick else 300)
    return [
        Table(
            name="numpy_bptt",
            title="Batched numpy BPTT vs fair torch opponents vs a per-sample textbook loop",
            columns=["threads", "clock", "dtype", "contender", "time (ms)",
                     "time / numpy [quartiles]", "GFLOP/s", "fraction of GEMM", "max rel. error"],
            rows=rows,
            notes=notes,
            meta=meta,
        ),
        Table(
            name="numpy_bptt_sizes",
            title="Batched numpy BPTT vs the textbook loop as the model grows (float64, 1 thread)",
            columns=["D = H", "numpy (ms)", "time-major (ms)", "textbook (ms)",
                     "textbook / numpy [quartiles]", "numpy GFLOP/s"],
            rows=size_rows,
            notes=f"B={batch}, T={steps}; median CPU time of paired rounds (rotating turns); "
            "GFLOP/s counts 6 B T H (D + H) flops per forward + backward.",
            meta=measurement_meta(threads=1, gemm_gflops={
                "numpy float64 1 thread": gemm_rate(np.float64, clock=CPU)}),
        ),
        Table(
            name="numpy_bptt_step_costs",
            title=f"One step of the loop taken apart: B={batch}, H={size}, 1 thread",
            columns=["dtype", "piece", "microseconds", "/ product", "product GFLOP/s"],
            rows=step_rows,
            notes="Median CPU time of each numpy call on (B, H) blocks after warm-up. The "
            "product is the only part a GEMM rate counts; the elementwise calls (tanh above "
            "all) are time the flop count does not see, paid once per step in the loop.",
            meta=measurement_meta(threads=1),
        ),
    ]
