"""Watching gradients while training: norms, clipping, dL/dh_t, and divergence
(Exploding gradients and clipping).

* :func:`grad_norms` - the global norm ||g|| = sqrt(sum_p ||g_p||^2) and one norm per
  parameter, read once per update;
* :func:`clip_grad_norm` - g <- g * min(1, kappa / ||g||) (eq. `clipping-rescale`), reporting
  if it fired;
* :func:`clip_grad_value` - g <- clamp(g, -v, v) elementwise, reporting how many entries moved;
* :func:`record_hidden` - keep h_1..h_T of the explicit recurrent loop so that dL/dh_t can be
  read after ``backward()`` (Vanishing and exploding gradients, Gated architectures,
  Stabilizers);
* :func:`saturation_fraction` - the fraction of hidden units with |h| above a level (0.999),
  whose slope 1 - h^2 passes almost no gradient back;
* :func:`check_finite` - stop with a :class:`NonFiniteError` that says which update went
  wrong and what to try, instead of training on NaNs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from bptt import _validate as v

from .models import RecurrentLayer


class NonFiniteError(FloatingPointError):
    """Training produced a NaN or Inf loss or gradient; the message says where and what to do."""


def grad_norms(named_parameters: Iterable[tuple[str, nn.Parameter]]) -> tuple[float, dict]:
    """(global norm, {name: norm}) of the current ``.grad`` of each parameter.

    A parameter without a gradient counts as 0. NaN/Inf propagate into the global norm.
    """
    named = [(name, p) for name, p in named_parameters]
    grads = [p.grad.detach() for _, p in named if p.grad is not None]
    values = iter(torch.stack([g.norm() for g in grads]).double().tolist() if grads else [])
    per_param = {name: (next(values) if p.grad is not None else 0.0) for name, p in named}
    return math.sqrt(sum(v * v for v in per_param.values())), per_param


def saturation_fraction(h: torch.Tensor, level: float = 0.999, dim=None) -> torch.Tensor:
    """Fraction of the entries of ``h`` with |h| > ``level`` (saturated tanh units).

    ``h`` any shape, e.g. (B, T, H); ``level`` in (0, 1); ``dim`` the dimensions to average
    over (None: all, giving a 0-d tensor). A saturated unit has tanh' = 1 - h^2 < 1 - level^2,
    so it passes (almost) no gradient back (Vanishing and exploding gradients, eq.
    `vanishing-saturation`).
    """
    if not isinstance(h, torch.Tensor):
        raise TypeError(f"h: expected a tensor of hidden states, got {type(h).__name__}")
    level = v.positive_float("level", level)
    if level >= 1:
        raise ValueError(f"level: expected a number in (0, 1), got {level}")
    saturated = (h.detach().abs() > level).double()
    return saturated.mean() if dim is None else saturated.mean(dim=dim)


def _grads(parameters: Iterable[nn.Parameter]) -> list[torch.Tensor]:
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm(
    parameters: Iterable[nn.Parameter], max_norm: float, total_norm: float | None = None
) -> bool:
    """Rescale the gradients in place, g <- g * min(1, kappa / ||g||); True if it fired.

    ``max_norm`` is the threshold kappa of eq. `clipping-rescale`.

    ``total_norm`` may pass an already computed ||g|| (saves one pass over the gradients).
    Unlike ``torch.nn.utils.clip_grad_norm_`` no 1e-6 is added to the denominator, so the
    clipped norm is exactly ``max_norm``.
    """
    max_norm = v.positive_float("max_norm", max_norm)
    grads = _grads(parameters)
    if total_norm is None:
        total_norm = math.sqrt(sum(float(g.norm()) ** 2 for g in grads))
    if total_norm <= max_norm:
        return False
    for g in grads:
        g.mul_(max_norm / total_norm)
    return True


def clip_grad_value(parameters: Iterable[nn.Parameter], clip_value: float) -> int:
    """Clamp every gradient entry into [-clip_value, clip_value]; returns how many moved."""
    clip_value = v.positive_float("clip_value", clip_value)
    grads = _grads(parameters)
    if not grads:
        return 0
    moved = sum((g.abs() > clip_value).sum() for g in grads)
    for g in grads:
        g.clamp_(-clip_value, clip_value)
    return int(moved)


def check_finite(
    update: int, steps: tuple[int, int], loss: float, grad_norm: float, lr: float | None
) -> None:
    """Raise :class:`NonFiniteError` if ``loss`` or ``grad_norm`` is NaN or Inf.

    The message names the update (1-based) and its time steps, the loss, the gradient norm,
    and the usual remedies: clip the gradient norm, lower the learning rate (naming the
    current one), check the data.
    """
    if math.isfinite(loss) and math.isfinite(grad_norm):
        return
    rate = f"lower the learning rate (now {lr:g})" if lr is not None else "lower the learning rate"
    raise NonFiniteError(
        f"training diverged at update {update} (time steps {steps[0]}..{steps[1] - 1}): "
        f"loss = {loss}, gradient norm = {grad_norm}. Try: clip the gradient norm "
        f"(clip_norm=1.0), {rate}, or check the inputs and targets for NaN/Inf; "
        f"the parameters were not updated by this step."
    )


class HiddenRecord:
    """The hidden states h_t recorded by :func:`record_hidden`, in time order."""

    def __init__(self, cell: str | None = None) -> None:
        self.states: list[torch.Tensor] = []
        self.cell = cell  # the recorded layer's cell ("rnn", "lstm", "gru"): h_t only, for an LSTM

    def grads(self) -> torch.Tensor:
        """dL/dh_t for every recorded step, shape (B, T, H); zeros where no gradient arrived."""
        if not self.states:
            raise ValueError(
                "record_hidden: no hidden state was recorded (run a forward pass "
                "with gradients enabled inside the with-block)"
            )
        return torch.stack(
            [h.grad if h.grad is not None else torch.zeros_like(h) for h in self.states], dim=1
        )

    def grad_norms(self) -> torch.Tensor:
        """||dL/dh_t|| (Frobenius over the batch and hidden units) per step, shape (T,)."""
        return self.grads().detach().flatten(2).norm(dim=2).norm(dim=0).double().cpu()

    def clear(self) -> None:
        self.states.clear()


def _single_layer(model: nn.Module) -> RecurrentLayer:
    layers = [m for m in model.modules() if isinstance(m, RecurrentLayer)]
    if len(layers) != 1:
        raise ValueError(
            f"model: expected exactly one RecurrentLayer to record, found {len(layers)}"
        )
    if layers[0].fused:
        raise ValueError(
            "model: its RecurrentLayer is fused (h_t never leaves the kernel); "
            "set layer.fused = False to record the hidden states"
        )
    return layers[0]


@contextmanager
def record_hidden(model: nn.Module) -> Iterator[HiddenRecord]:
    """Record every h_t (with ``retain_grad``) that ``model``'s explicit recurrent loop makes.

    Usage::

        with record_hidden(model) as rec:
            out, _ = model(x)
            loss_fn(out, y).backward()
        rec.grad_norms()          # ||dL/dh_t|| for t = 1..T, shape (T,)

    dL/dh_t is the total derivative: through the output at t and through every later step.
    ``model`` must contain exactly one :class:`RecurrentLayer`, in the explicit form.
    """
    layer = _single_layer(model)
    record = HiddenRecord(layer.cell)
    layer.recorder = record.states
    try:
        yield record
    finally:
        layer.recorder = None
