"""Checkpointed BPTT: sqrt(T) memory for one recomputed forward pass ("The cost of BPTT",
equation `checkpoint-memory`).

The sequence of T steps is cut into segments of s steps. The forward pass keeps only the
state entering each segment; the backward pass recomputes one segment at a time (with
``torch.utils.checkpoint``) and backpropagates through it.

Two variants of ``torch.utils.checkpoint`` (``reentrant``): the default, non-reentrant one
runs the forward pass with grad mode on and drops the saved tensors, but keeps every autograd
node of the sequence (about 10 KB per step of an LSTM); the reentrant one runs each segment's
forward pass without a graph at all, keeps one node per segment and rebuilds the segment's
graph during the backward pass - the algorithm of the papers, and faster, since no per-step
bookkeeping survives the forward pass. It accumulates into ``.grad`` (call ``loss.backward()``;
``torch.autograd.grad`` is refused). Memory
is then about T/s boundary states plus one segment's saved tensors, smallest near
s = sqrt(T) (about 2 sqrt(T) steps' worth); the gradient is exactly that of plain BPTT.

The loss is computed inside each segment, so no (B, T, ...) output is ever kept:

    L = sum_j (T_j / T) * loss_fn(o[segment j], y[segment j]),

which equals ``loss_fn`` over the whole sequence when it is a mean with the same number of
terms per step (mean squared error, cross-entropy without ignored targets).
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import torch
from torch.utils.checkpoint import checkpoint

from bptt import _validate as v

from .contract import call_model, check_stream, scalar_loss
from .memory import saved_bytes
from .state import map_state


def _flatten(state) -> list[torch.Tensor]:
    flat: list[torch.Tensor] = []
    map_state(lambda t: flat.append(t) or t, state)
    return flat


def _unflatten(template, flat) -> object:
    parts = iter(flat)
    return map_state(lambda _: next(parts), template)


def _segment_length(T: int, segment: int | None) -> int:
    if segment is None:
        return max(1, math.isqrt(T))
    return v.integer("segment", segment, minimum=1)


def checkpointed_loss(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    loss_fn,
    segment: int | None = None,
    state=None,
    use_checkpoint: bool = True,
    reentrant: bool = False,
):
    """The loss over a (B, T, ...) sequence, each segment of ``segment`` steps checkpointed.

    Args:
        model: ``model(x_chunk, state) -> (output, new_state)``, batch first.
        x, y: inputs and per-step targets, (B, T, ...) with the same B and T.
        loss_fn: ``loss_fn(output, y) -> scalar``, a per-step mean (see module docstring).
        segment: s, steps per segment (default floor(sqrt(T))); the last may be shorter.
        state: the state entering step 1 (``None``: zeros).
        use_checkpoint: ``False`` computes the same sum without checkpointing (plain BPTT,
            for comparison).
        reentrant: use the reentrant checkpoint (no graph kept between segments; gradients
            only through ``loss.backward()``); see the module docstring.

    Returns:
        (loss, final_state): call ``loss.backward()`` for the gradient of plain BPTT.
    """
    _, T = check_stream(x, y)
    s = _segment_length(T, segment)
    total = 0.0
    # the reentrant checkpoint's output needs a grad-requiring input, or the first segment
    # (data and a None state only) would send no gradient to the parameters
    anchor = [torch.ones((), requires_grad=True)] if reentrant and use_checkpoint else []
    for start in range(0, T, s):
        x_seg, y_seg = x[:, start : start + s], y[:, start : start + s]
        # The state goes in as separate tensor arguments, so that checkpoint saves each one
        # (and a SavedTensorTracker sees it); the partial keeps the (h, c) nesting.
        run = partial(_run_segment, model, loss_fn, state)
        if use_checkpoint and reentrant:
            # the reentrant checkpoint connects only top-level output tensors: flatten (h, c)
            # and rebuild it from the structure the segment reports
            shape: dict = {}
            run = partial(_run_segment_anchored, model, loss_fn, state, shape)
            loss, *flat = checkpoint(run, x_seg, y_seg, *anchor, *_flatten(state),
                                     use_reentrant=True)
            state = _unflatten(shape["state"], flat)
        elif use_checkpoint:
            loss, state = checkpoint(run, x_seg, y_seg, *_flatten(state), use_reentrant=False)
        else:
            loss, state = run(x_seg, y_seg, *_flatten(state))
        total = total + (x_seg.shape[1] / T) * loss
    return total, state


def _run_segment(model, loss_fn, structure, x_seg, y_seg, *flat_state):
    output, new_state = call_model(model, x_seg, _unflatten(structure, flat_state))
    return scalar_loss(loss_fn, output, y_seg), new_state


def _run_segment_anchored(model, loss_fn, structure, shape, x_seg, y_seg, _anchor, *flat_state):
    loss, new_state = _run_segment(model, loss_fn, structure, x_seg, y_seg, *flat_state)
    shape["state"] = new_state
    return (loss, *_flatten(new_state))


class CheckpointMemory(NamedTuple):
    """Saved bytes of checkpointed BPTT, measured in two parts (see
    :func:`checkpoint_saved_bytes`): boundary states kept between forward and backward,
    one segment's saved tensors while it is recomputed, and their sum, the peak."""

    kept_bytes: int
    segment_bytes: int
    peak_bytes: int


def checkpoint_saved_bytes(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    loss_fn,
    segment: int | None = None,
    state=None,
) -> CheckpointMemory:
    """Measure what checkpointed BPTT keeps, with :class:`SavedTensorTracker` hooks.

    ``torch.utils.checkpoint`` hides the tensors it recomputes during backward from outer
    saved-tensor hooks, so the peak is measured in two parts: ``kept_bytes``, the peak the
    hooks see over forward and backward of :func:`checkpointed_loss` (the T/s boundary
    states), and ``segment_bytes``, the saved bytes of plain BPTT over the first (longest)
    segment, which is what one recomputation holds. While the last segment is recomputed
    every boundary is still held, so ``peak_bytes = kept_bytes + segment_bytes``. The model's
    parameters and the data are not charged; no ``.grad`` is touched.
    """
    _, T = check_stream(x, y)
    s = _segment_length(T, segment)
    exclude = [model, x, y]
    params = [p for p in model.parameters() if p.requires_grad]

    def run(xs, ys, checkpointed):
        loss, _ = checkpointed_loss(
            model, xs, ys, loss_fn=loss_fn, segment=s, state=state, use_checkpoint=checkpointed
        )
        torch.autograd.grad(loss, params)  # the backward pass, leaving every .grad alone

    kept = saved_bytes(lambda: run(x, y, True), exclude=exclude)
    one_segment = saved_bytes(lambda: run(x[:, :s], y[:, :s], False), exclude=exclude)
    return CheckpointMemory(kept, one_segment, kept + one_segment)
