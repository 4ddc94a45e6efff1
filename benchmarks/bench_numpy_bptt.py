"""Batched numpy BPTT against torch autograd and against a per-sample textbook loop.

The same tanh RNN forward + backward (dh from outside given, as :func:`bptt.rnn.backward`
takes it), three ways, at B=32, T=100, D=H=128 in float32 and float64:

- ``bptt.rnn.forward`` + ``bptt.rnn.backward`` (batched numpy);
- torch autograd on the same model written as a Python loop of torch ops, on the CPU;
- the usual textbook version: one sequence at a time, one step at a time, hidden states kept
  in a Python dict (written below, for this comparison only).

Each row sets numpy's BLAS and torch to the same thread count (1, and every core); the
one-thread rows are timed in CPU time, which stays steady when others share the machine.
Targets (issue 3): numpy <= 1.0x the torch time, and >= 20x faster than the textbook loop.

A second table runs numpy and the textbook loop over sizes D = H from 16 to 256 (one thread,
float64) with the rate numpy reaches, 6 B T H (D + H) flops per forward + backward: it shows
where the textbook loop's cost is Python overhead (small H, large ratios) and where both do
the same arithmetic and the batched code is bounded by the core's peak (large H).
"""

from __future__ import annotations

import functools
import os

import numpy as np

from benchmarks.harness import CPU, WALL, Table, log, threads, time_interleaved
from bptt import gradcheck, rnn


def textbook_forward_backward(x, h0, W_xh, W_hh, b, dh):
    """Per-sample, per-step BPTT with the states in a dict (the usual textbook code)."""
    grads = {
        "x": np.zeros_like(x),
        "h0": np.zeros_like(h0),
        "W_xh": np.zeros_like(W_xh),
        "W_hh": np.zeros_like(W_hh),
        "b": np.zeros_like(b),
    }
    for n in range(x.shape[0]):
        states = {-1: h0[n]}
        for t in range(x.shape[1]):
            states[t] = np.tanh(W_xh @ x[n, t] + W_hh @ states[t - 1] + b)
        from_next = np.zeros_like(b)
        for t in reversed(range(x.shape[1])):
            raw = (dh[n, t] + from_next) * (1.0 - states[t] * states[t])
            grads["W_xh"] += np.outer(raw, x[n, t])
            grads["W_hh"] += np.outer(raw, states[t - 1])
            grads["b"] += raw
            grads["x"][n, t] = W_xh.T @ raw
            from_next = W_hh.T @ raw
        grads["h0"][n] = from_next
    return grads


def numpy_forward_backward(x, h0, W_xh, W_hh, b, dh):
    _, cache = rnn.forward(x, h0, W_xh, W_hh, b)
    return rnn.backward(dh, cache)


_NAMES = ("x", "h0", "W_xh", "W_hh", "b")


def _torch_runner(torch, arrays):
    """A closure running the torch loop version on tensors made once from ``arrays``."""
    *inputs, dh = (torch.from_numpy(a) for a in arrays)
    leaves = [a.clone().requires_grad_(True) for a in inputs]

    def run():
        for leaf in leaves:
            leaf.grad = None
        x, h, w_xh, w_hh, bias = leaves
        states = []
        for t in range(x.shape[1]):
            h = torch.tanh(x[:, t] @ w_xh.T + h @ w_hh.T + bias)
            states.append(h)
        torch.autograd.backward(torch.stack(states, dim=1), dh)
        return {name: leaf.grad.numpy() for name, leaf in zip(_NAMES, leaves)}

    return run


def _problem(batch, steps, size, dtype, seed=0):
    rng = np.random.default_rng(seed)
    params = rnn.init_params(size, size, 1, rng=rng, dtype=dtype)
    x = rng.standard_normal((batch, steps, size)).astype(dtype)
    h0 = 0.1 * rng.standard_normal((batch, size)).astype(dtype)
    dh = rng.standard_normal((batch, steps, size)).astype(dtype)
    return x, h0, params["W_xh"], params["W_hh"], params["b"], dh


def _check_agreement(arrays, runners) -> None:
    """All implementations give the gradient of bptt.rnn before anything is timed."""
    reference = numpy_forward_backward(*arrays)
    tolerance = 1e-4 if arrays[0].dtype == np.float32 else 1e-12
    for name, run_once in runners.items():
        error = gradcheck.max_relative_error(reference, run_once())
        if error > tolerance:
            raise AssertionError(f"{name} disagrees with bptt.rnn ({arrays[0].dtype}): {error}")


def _measure(torch, count, batch, steps, size, repeats, warmup) -> list[list]:
    """Rows for float32 and float64 at one thread count."""
    rows = []
    for dtype in (np.float32, np.float64):
        arrays = _problem(batch, steps, size, dtype)
        torch_run = _torch_runner(torch, arrays)
        numpy_run = functools.partial(numpy_forward_backward, *arrays)
        book_run = functools.partial(textbook_forward_backward, *arrays)
        _check_agreement(arrays, {"torch": torch_run, "textbook": book_run})
        log(f"  {count} thread(s), {dtype.__name__}: timing numpy, torch, textbook ...")
        times = time_interleaved(
            {"numpy": numpy_run, "torch": torch_run, "textbook": book_run},
            repeats=repeats,
            warmup=warmup,
            clock=CPU if count == 1 else WALL,
        )
        t_numpy, t_torch, t_book = times["numpy"], times["torch"], times["textbook"]
        rows.append(
            [
                count,
                "CPU" if count == 1 else "wall",
                dtype.__name__,
                t_numpy * 1e3,
                t_torch * 1e3,
                t_book * 1e3,
                t_numpy / t_torch,
                t_book / t_numpy,
                "yes" if t_numpy <= t_torch else "no",
                "yes" if t_book >= 20 * t_numpy else "no",
            ]
        )
    return rows


def _flops(batch: int, steps: int, size: int) -> int:
    """Multiply-adds x 2 of one forward + backward at D = H = size (see the module docstring)."""
    return 6 * batch * steps * size * (size + size)


def _size_rows(batch, steps, sizes, repeats, warmup) -> list[list]:
    rows = []
    with threads(1):
        for size in sizes:
            arrays = _problem(batch, steps, size, np.float64)
            log(f"  D = H = {size}: timing numpy and textbook ...")
            times = time_interleaved(
                {
                    "numpy": functools.partial(numpy_forward_backward, *arrays),
                    "textbook": functools.partial(textbook_forward_backward, *arrays),
                },
                repeats=repeats,
                warmup=warmup,
                clock=CPU,
            )
            rate = _flops(batch, steps, size) / times["numpy"] / 1e9
            rows.append([size, times["numpy"] * 1e3, times["textbook"] * 1e3,
                         times["textbook"] / times["numpy"], rate])
    return rows


def run(quick: bool = False) -> list[Table]:
    import torch

    batch, steps, size = (4, 10, 16) if quick else (32, 100, 128)
    repeats, warmup = (3, 1) if quick else (7, 1)
    thread_counts = [1] if quick else sorted({1, os.cpu_count() or 1})
    rows = []
    for count in thread_counts:
        with threads(count):
            rows += _measure(torch, count, batch, steps, size, repeats, warmup)
    notes = (
        f"Forward + backward of a tanh RNN (gradients of x, h0, W_xh, W_hh, b from a given "
        f"dL/dh_t), B={batch}, T={steps}, D=H={size}; median of {repeats} runs after {warmup} "
        "warm-up run(s), the three timed in turns (one run of each per round). "
        "numpy's BLAS and torch use the same thread count in each row; one-thread rows report "
        "CPU time (steady on a shared machine), multi-thread rows wall-clock time. "
        "All three give the same gradient (checked before timing). Targets: numpy / torch <= 1.0, textbook / numpy >= 20."
    )
    sizes = (8, 16) if quick else (16, 32, 64, 128, 256)
    size_rows = _size_rows(batch, steps, sizes, repeats=3 if quick else 5, warmup=1)
    return [
        Table(
            name="numpy_bptt",
            title="Batched numpy BPTT vs torch autograd vs a per-sample textbook loop",
            columns=[
                "threads",
                "clock",
                "dtype",
                "numpy (ms)",
                "torch autograd (ms)",
                "textbook (ms)",
                "numpy / torch",
                "textbook / numpy",
                "numpy <= torch",
                "textbook >= 20x numpy",
            ],
            rows=rows,
            notes=notes,
        ),
        Table(
            name="numpy_bptt_sizes",
            title="Batched numpy BPTT vs the textbook loop as the model grows (float64, 1 thread)",
            columns=["D = H", "numpy (ms)", "textbook (ms)", "textbook / numpy",
                     "numpy GFLOP/s"],
            rows=size_rows,
            notes=f"B={batch}, T={steps}; median CPU time of the runs, timed in turns; "
            "GFLOP/s counts 6 B T H (D + H) flops per forward + backward.",
        ),
    ]
