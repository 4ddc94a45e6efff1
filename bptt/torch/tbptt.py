"""Truncated backpropagation through time, TBPTT(k1, k2) ("Truncated BPTT" and "TBPTT(k1, k2)
and the bias of truncation", equation ``tbptt-update``).

Definition (Williams and Peng, 1990), for a stream x_1..x_T with targets y_1..y_T, a
model h_t = f_theta(h_{t-1}, x_t), o_t = g_theta(h_t) and an initial state h_0:

* there are N = ceil(T / k1) updates, at the times t_n = min(n * k1, T), t_0 = 0;
* update n owns the losses of steps t_{n-1}+1 .. t_n:
  L_n = loss_fn(o[t_{n-1}+1 .. t_n], y[t_{n-1}+1 .. t_n]);
* its gradient is dL_n/dtheta with every h_s and o_s for s <= w_n held constant
  (stop-gradient): backpropagation runs through the steps w_n+1 .. t_n and the state
  h_{w_n} entering that window is detached. The window start is (``anchor="losses"``, the
  default)

      w_n = max(t_n - k2, t_{n-1} - max(k2 - k1, 0), 0),

  the last k2 steps up to t_n, but never more than k2 - k1 steps before the update's first
  loss. A full update (t_n - t_{n-1} = k1) gets exactly the k2 steps t_n - k2 + 1 .. t_n; a
  short last update (T not a multiple of k1) gets the same reach-back as the others, so
  with k1 = k2 = k its window is its own ragged chunk, as in the chunked loop everyone
  writes. ``anchor="end"`` always takes w_n = max(t_n - k2, 0): then the short last update
  of TBPTT(k, k) reaches back into the previous chunk and re-runs those steps with the new
  parameters. If k2 < k1 the losses of steps t_{n-1}+1 .. w_n are reported but send no
  gradient at all; if k2 > k1 the window reaches k2 - k1 steps back into the previous
  update's steps to give its losses more credit;
* the forward pass of update n runs with the current parameters theta_n from the state at
  time a_n = min(w_n, t_{n-1}) that the forward pass of update n-1 computed (h_0 for
  a_n = 0), then theta_{n+1} = optimizer step with g_n (after clipping, if asked).

So the loss at step s gets credit for the s - w_n steps w_n+1..s (none if s <= w_n).
k1 = k2 = k is the common chunked scheme (k = 35 in word language models), exactly the loop
``for chunk: state = detach(state); out, state = model(chunk, state); loss.backward();
step()`` including a shorter last chunk: the loss at position j of a chunk is
backpropagated through j steps only. k1 = k2 = T is full BPTT.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from itertools import pairwise
from typing import NamedTuple

import torch

from bptt import _validate as v

from .contract import call_model, check_stream, scalar_loss
from .data import iter_chunks
from .monitor import check_finite, clip_grad_norm, clip_grad_value, record_hidden
from .progress import progress_bar
from .state import detach_state


class Update(NamedTuple):
    """One TBPTT update in 0-based, half-open time indices: losses of steps
    ``loss_start:end``, backpropagation through ``window_start:end``."""

    loss_start: int
    end: int
    window_start: int


ANCHORS = ("losses", "end")


def tbptt_schedule(T: int, k1: int, k2: int, *, anchor: str = "losses") -> list[Update]:
    """The updates of TBPTT(k1, k2) over T steps (see the module docstring).

    Update n (1-based) has ``end`` = min(n k1, T) and ``loss_start`` = the previous end.
    ``window_start`` is max(end - k2, loss_start - max(k2 - k1, 0), 0) with
    ``anchor="losses"`` (the default: TBPTT(k, k) is the chunked loop, ragged last chunk
    included) and max(end - k2, 0) with ``anchor="end"`` (the last k2 steps, always); the two
    differ only in a short last update. k1, k2 >= 1 (``ValueError`` otherwise); k1 > T is
    allowed and means a single update.
    """
    v.integer("T", T, minimum=1)
    v.integer("k1", k1, minimum=1)
    v.integer("k2", k2, minimum=1)
    anchor = v.choice("anchor", anchor, ANCHORS)
    reach = max(k2 - k1, 0)
    ends = list(range(k1, T, k1)) + [T]
    updates = []
    for start, end in zip([0] + ends, ends):
        window = max(end - k2, 0) if anchor == "end" else max(end - k2, start - reach, 0)
        updates.append(Update(start, end, window))
    return updates


def loss_credit(T: int, k1: int, k2: int, *, anchor: str = "losses") -> list[int]:
    """Earlier steps the gradient of each loss reaches under TBPTT(k1, k2), from the schedule.

    Entry s (0-based step) is max(s - window_start, 0) of the update that owns loss s: the loss
    at position j of a chunk of TBPTT(k, k) gets j - 1 steps (equation ``tbptt-mean-credit``).
    """
    credit = [0] * v.integer("T", T, minimum=1)
    for update in tbptt_schedule(T, k1, k2, anchor=anchor):
        for s in range(update.loss_start, update.end):
            credit[s] = max(s - update.window_start, 0)
    return credit


def credit_map(T: int, k1: int, k2: int, *, anchor: str = "losses") -> list[list[bool]]:
    """(T, T) table: entry [s][j] is True when the gradient of the loss at step s reaches the
    state at step j <= s under TBPTT(k1, k2) (0-based steps)."""
    credit = loss_credit(T, k1, k2, anchor=anchor)
    return [[s - credit[s] <= j <= s for j in range(T)] for s in range(T)]


@dataclass
class TrainHistory:
    """What :func:`train_tbptt` saw, one entry per update.

    loss: L_n; grad_norm: global ||g_n|| before clipping; param_grad_norms: name -> list of
    per-parameter norms; clipped: whether norm clipping fired; values_clipped: entries moved
    by value clipping; hidden_grad_norms: ||dL_n/dh_t|| over the update's window (a (k,)
    tensor per update, only with ``track_hidden=True``); tokens_per_s: B * (steps of the
    update) / wall time of the update; steps: (loss_start, end) 0-based half-open;
    final_state: the detached state after step T, to continue the stream.
    """

    loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    param_grad_norms: dict[str, list[float]] = field(default_factory=dict)
    clipped: list[bool] = field(default_factory=list)
    values_clipped: list[int] = field(default_factory=list)
    hidden_grad_norms: list[torch.Tensor] = field(default_factory=list)
    tokens_per_s: list[float] = field(default_factory=list)
    steps: list[tuple[int, int]] = field(default_factory=list)
    final_state: object = None

    def append(self, update: Update, stats, hidden: torch.Tensor | None, rate: float) -> None:
        """Record one update (used by :func:`train_tbptt`)."""
        self.loss.append(stats.loss)
        self.grad_norm.append(stats.grad_norm)
        for name, value in stats.param_grad_norms.items():
            self.param_grad_norms[name].append(value)
        self.clipped.append(stats.clipped)
        self.values_clipped.append(stats.values_clipped)
        if hidden is not None:
            self.hidden_grad_norms.append(hidden)
        self.tokens_per_s.append(rate)
        self.steps.append((update.loss_start, update.end))

    @property
    def n_updates(self) -> int:
        return len(self.loss)

    @property
    def clip_count(self) -> int:
        """How many updates had their gradient rescaled by norm clipping."""
        return sum(self.clipped)

    @property
    def value_clip_count(self) -> int:
        """How many updates had at least one gradient entry clamped by value clipping."""
        return sum(1 for n in self.values_clipped if n > 0)

    @property
    def mean_tokens_per_s(self) -> float:
        """Tokens over total update time for the whole run."""
        times = [(end - start) / rate for (start, end), rate in zip(self.steps, self.tokens_per_s)]
        return sum(end - start for start, end in self.steps) / sum(times) if times else 0.0


def _check_training_args(model, optimizer, loss_fn, clip_norm, clip_value) -> None:
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer: expected a torch.optim.Optimizer, got {type(optimizer).__name__}"
        )
    if not callable(loss_fn):
        raise TypeError(
            f"loss_fn: expected a callable loss_fn(output, y) -> scalar, "
            f"got {type(loss_fn).__name__}"
        )
    for name, value in (("clip_norm", clip_norm), ("clip_value", clip_value)):
        if value is not None:
            v.positive_float(name, value)


def _check_device(model: torch.nn.Module, x: torch.Tensor) -> None:
    param = next(model.parameters(), None)
    if param is not None and param.device != x.device:
        raise ValueError(
            f"x: expected a tensor on the model's device {param.device}, got {x.device}"
        )


def _forward_update(model, x, state_at: dict, update: Update, next_start: int):
    """Run update ``update``'s forward pass; returns the outputs of its loss steps.

    It starts from ``state_at[min(window_start, loss_start)]`` and is cut at the window start
    (state detached, gradient on from there), at the first loss step (outputs kept from
    there) and at ``next_start``, whose state it stores in ``state_at`` for the next update.
    """
    start = min(update.window_start, update.loss_start)
    cuts = sorted(
        {start, update.window_start, update.loss_start, update.end}
        | ({next_start} if start < next_start < update.end else set())
    )
    h, outputs = state_at[start], []
    for a, b in pairwise(cuts):
        if a == update.window_start:
            h = detach_state(h)
        with torch.set_grad_enabled(a >= update.window_start):
            out, h = call_model(model, x[:, a:b], h)
        if b == next_start:
            state_at[b] = detach_state(h)
        if a >= update.loss_start:
            outputs.append(out)
    return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=1)


def train_tbptt(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    k1: int,
    k2: int,
    optimizer: torch.optim.Optimizer,
    loss_fn,
    clip_norm: float | None = None,
    clip_value: float | None = None,
    state=None,
    track_hidden: bool = False,
    progress: bool = True,
    anchor: str = "losses",
) -> TrainHistory:
    """Train ``model`` on one long stream with TBPTT(k1, k2); see the module docstring.

    Args:
        model: called as ``model(x_chunk, state) -> (output, new_state)``, batch first,
            output (B, T_chunk, ...), like ``torch.nn.RNN``.
        x: inputs (B, T, ...) - B parallel streams of T steps (e.g. from ``batchify``).
        y: targets (B, T, ...), one per input step.
        k1: steps between updates (>= 1).  k2: steps backpropagated per update (>= 1).
        optimizer: steps the parameters once per update.
        loss_fn: ``loss_fn(output_chunk, y_chunk) -> scalar tensor`` (e.g. a mean).
        clip_norm: rescale g to norm ``clip_norm`` when ||g|| exceeds it (Gradient clipping).
        clip_value: clamp each gradient entry into [-clip_value, clip_value] (applied before
            norm clipping when both are given).
        state: the state entering step 1 (``None``: zeros); it is detached.
        track_hidden: record ||dL_n/dh_t|| per window step (needs the model's single
            ``RecurrentLayer`` in the explicit form, ``fused=False``).
        progress: show a ``tqdm.auto`` bar (also off when ``BPTT_PROGRESS=0``).
        anchor: ``"losses"`` (default; TBPTT(k, k) equals the hand-written chunked loop, a
            ragged last chunk included) or ``"end"`` (every window is the last k2 steps,
            so a short last update reaches back into the previous chunk); see
            :func:`tbptt_schedule`.

    Returns:
        :class:`TrainHistory`; ``history.final_state`` continues the stream.

    Raises:
        NonFiniteError: when a loss or gradient norm is NaN/Inf (before that update's step).
    """
    _check_training_args(model, optimizer, loss_fn, clip_norm, clip_value)
    batch, T = check_stream(x, y)
    _check_device(model, x)
    schedule = tbptt_schedule(T, k1, k2, anchor=anchor)
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    history = TrainHistory(param_grad_norms={name: [] for name, _ in named})
    state_at = {0: detach_state(state)}
    with record_hidden(model) if track_hidden else nullcontext() as record:
        bar = progress_bar(total=len(schedule), desc=f"TBPTT({k1}, {k2})", progress=progress)
        try:
            for n, update in enumerate(schedule):
                tic = time.perf_counter()
                if record is not None:
                    record.clear()
                next_start = (
                    min(schedule[n + 1].window_start, update.end) if n + 1 < len(schedule) else T
                )
                output = _forward_update(model, x, state_at, update, next_start)
                state_at = {next_start: state_at[next_start]}
                loss = scalar_loss(loss_fn, output, y[:, update.loss_start : update.end])
                stats = _gradient_step(n, update, loss, named, optimizer, clip_norm, clip_value)
                elapsed = time.perf_counter() - tic
                hidden = record.grad_norms() if record is not None else None
                history.append(
                    update, stats, hidden, batch * (update.end - update.loss_start) / elapsed
                )
                bar.update()
                if not bar.disable:
                    bar.set_postfix(
                        loss=f"{stats.loss:.4f}", grad=f"{stats.grad_norm:.3g}", refresh=False
                    )
        finally:
            bar.close()
    history.final_state = state_at[T]
    return history


class _StepStats(NamedTuple):
    loss: float
    grad_norm: float
    param_grad_norms: dict[str, float]
    clipped: bool
    values_clipped: int


def _loss_and_norms(loss: torch.Tensor, named) -> tuple[float, float, dict[str, float]]:
    """The loss, the global and the per-parameter gradient norms with one host sync.

    The same numbers as ``float(loss)`` and :func:`bptt.torch.monitor.grad_norms` (bit for
    bit: the same norm kernel per tensor, the same float64 sum), but the norms come from one
    ``torch._foreach_norm`` call and loss and norms reach Python in a single ``tolist()``.
    """
    grads = [p.grad.detach() for _, p in named if p.grad is not None]
    norms = list(torch._foreach_norm(grads)) if grads else []
    values = torch.stack([t.double() for t in [loss.detach(), *norms]]).tolist()
    rest = iter(values[1:])
    per_param = {name: (next(rest) if p.grad is not None else 0.0) for name, p in named}
    return values[0], math.sqrt(sum(v * v for v in per_param.values())), per_param


def _gradient_step(n, update, loss, named, optimizer, clip_norm, clip_value) -> _StepStats:
    """Update n's backward pass, gradient norms, NaN/Inf check, clipping and optimizer step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    loss_value, norm, per_param = _loss_and_norms(loss, named)
    lr = optimizer.param_groups[0].get("lr")
    check_finite(n + 1, (update.loss_start, update.end), loss_value, norm, lr)
    params = [p for _, p in named]
    moved = clip_grad_value(params, clip_value) if clip_value is not None else 0
    # after value clipping the norm has changed: let clip_grad_norm measure it again
    fired = clip_norm is not None and clip_grad_norm(
        params, clip_norm, norm if clip_value is None else None
    )
    optimizer.step()
    return _StepStats(loss_value, norm, per_param, bool(fired), moved)


@torch.no_grad()
def evaluate_stream(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    loss_fn,
    chunk: int = 256,
    state=None,
) -> tuple[float, object]:
    """Mean loss of ``model`` over a stream (B, T, ...), carrying the state, no gradients.

    The stream is run in chunks of ``chunk`` steps (memory only; the result does not depend
    on it for per-step mean losses): returns (sum_chunks len_c * loss_c / T, final state).
    Validation perplexity of a language model is exp of this with cross-entropy.
    """
    _, T = check_stream(x, y)
    _check_device(model, x)
    total = 0.0
    for x_chunk, y_chunk in iter_chunks(x, y, chunk):
        output, state = call_model(model, x_chunk, state)
        total += x_chunk.shape[1] * float(scalar_loss(loss_fn, output, y_chunk))
    return total / T, state
