"""Checks of exercise 5: find the bug in a PyTorch training step ("BPTT in PyTorch").

A find-the-bug exercise: the learner gets two working-looking functions, each with one planted
bug, and fixes them.

- ``sequence_loss(logits, targets)``: the mean cross-entropy of eq. ``pytorch-cross-entropy``
  over all B T predictions, logits (B, T, V), targets (B, T) token ids -> a scalar tensor.
  Planted: the log-softmax runs over the time axis (dim=1) instead of the vocabulary.
- ``train_steps(model, optimizer, batches, loss_fn)``: one update per ``(x, y)`` batch (forward,
  loss, ``zero_grad``, ``backward``, ``step``), returning the losses as floats; ``model(x)``
  returns ``(logits, state)`` like :class:`bptt.torch.CharLM`. Planted: ``zero_grad`` is
  missing, so the gradients of all earlier batches pile up in ``.grad``.

Expected values: ``torch.nn.functional.cross_entropy`` on the reshaped logits and its autograd
gradient (float64) for the loss; for the training steps a reference pass over a copy of the same
model that takes gradients with ``torch.autograd.grad`` and applies the SGD step by hand.
"""

from __future__ import annotations

import copy

import numpy as np

from ..errors import WrongOutput, a_type
from ..hints import array_value, compare
from ..parts import Exercise, Part, Verdict
from ._support import rng_for, single_threaded, torch

PARAMETER_RTOL = 1e-8
LR = 0.5
WRONG_AXIS = (
    "at every step the probabilities must sum to 1 over the V characters: over which axis "
    "does your softmax normalise?"
)
PILED_UP = (
    "the first update is right and the later ones are not: what does .grad hold when the "
    "second batch's backward() runs?"
)


# ----------------------------------------------------------------------------- sequence_loss


def _loss_inputs(seed: int) -> dict:
    rng = rng_for(seed, "ex05.loss")
    B, T = int(rng.integers(2, 5)), int(rng.integers(3, 7))
    V = T + int(rng.integers(1, 4))  # V != T: a softmax over the wrong axis shows
    return {"logits": 1.5 * rng.normal(size=(B, T, V)), "targets": rng.integers(0, V, (B, T))}


def _collect_loss(functions, inputs):
    t = torch()
    logits = t.tensor(inputs["logits"], dtype=t.float64, requires_grad=True)
    targets = t.tensor(inputs["targets"], dtype=t.long)
    loss = functions["sequence_loss"](logits, targets.clone())
    if not isinstance(loss, t.Tensor) or loss.numel() != 1:
        raise WrongOutput(
            f"sequence_loss should return a tensor with one number, got {a_type(loss)}"
        )
    if loss.grad_fn is None:
        raise WrongOutput(
            "sequence_loss returned a tensor without a graph: compute it with torch "
            "operations from the logits, so that backward() can run"
        )
    loss.reshape(()).backward()
    return {"the loss": loss.detach(), "dL/dlogits": logits.grad}


def _cross_entropy_and_grad(logits: np.ndarray, targets: np.ndarray, *, dim: int = -1):
    """Mean of -log softmax(logits, dim)[target] over all B T predictions and its gradient."""
    t = torch()
    z = t.tensor(logits, dtype=t.float64, requires_grad=True)
    y = t.tensor(targets, dtype=t.long)
    if dim == -1:
        loss = t.nn.functional.cross_entropy(z.reshape(-1, z.shape[-1]), y.reshape(-1))
    else:
        loss = -t.log_softmax(z, dim=dim).gather(-1, y[..., None]).mean()
    loss.backward()
    return float(loss.detach()), z.grad.numpy()


def _score_loss(inputs, values):
    logits, targets = inputs["logits"], inputs["targets"]
    with single_threaded():
        loss, grad = _cross_entropy_and_grad(logits, targets)
        axis_loss, axis_grad = _cross_entropy_and_grad(logits, targets, dim=1)
    B, T, _ = logits.shape
    scales = [
        (T, "T times too large: the loss averages over the time steps too, 1/(B T) in all"),
        (B * T, "a sum: the loss is the mean over all B T predictions"),
        (B, "B times too large: the loss averages over the batch too"),
    ]
    return Verdict.from_hints(
        [
            compare(
                "the loss",
                array_value(values, "the loss").reshape(()),
                np.array(loss),
                variants=[(np.array(axis_loss), WRONG_AXIS)],
                scales=scales,
            ),
            compare(
                "dL/dlogits",
                array_value(values, "dL/dlogits"),
                grad,
                variants=[(axis_grad, WRONG_AXIS)],
                scales=scales,
            ),
        ]
    )


# ----------------------------------------------------------------------------- train_steps


def cross_entropy(logits, targets):
    """The loss the check trains with: eq. ``pytorch-cross-entropy`` by ``F.cross_entropy``."""
    t = torch()
    return t.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def _training_inputs(seed: int) -> dict:
    """A float64 CharLM (on the CPU, wherever the grader runs) and three batches of tokens."""
    from ...torch import CharLM

    t = torch()
    rng = rng_for(seed, "ex05.train")
    V, H, B, T = (int(rng.integers(lo, hi)) for lo, hi in ((4, 8), (3, 7), (2, 5), (3, 7)))
    model = CharLM(
        V,
        H,
        embedding_dim=3,
        cell="rnn",
        fused=False,
        seed=int(rng.integers(2**31)),
        dtype=t.float64,
        device="cpu",
    )
    tokens = t.tensor(rng.integers(0, V, (3, B, T + 1)), dtype=t.long)
    return {
        "model": model,
        "optimizer": t.optim.SGD(model.parameters(), lr=LR),
        "batches": [(window[:, :-1], window[:, 1:]) for window in tokens],
    }


def _numbers(losses) -> list[float]:
    if not isinstance(losses, (list, tuple)):
        raise WrongOutput(f"train_steps should return the list of losses, got {a_type(losses)}")
    try:
        return [float(loss) for loss in losses]
    except (TypeError, ValueError, RuntimeError):
        raise WrongOutput("train_steps should return the losses as numbers (loss.item())") from None


def _parameters(model) -> np.ndarray:
    return np.concatenate([p.detach().numpy().ravel() for p in model.parameters()])


def _collect_training(functions, inputs):
    model, batches = inputs["model"], inputs["batches"]
    with single_threaded():
        losses = _numbers(
            functions["train_steps"](model, inputs["optimizer"], batches, cross_entropy)
        )
    return {"the losses": losses, "the parameters after training": _parameters(model)}


def _reference(inputs: dict, *, zero_grad: bool = True, update: bool = True):
    """The training pass on a copy of the model: autograd.grad and a hand-written SGD step."""
    t = torch()
    model = copy.deepcopy(inputs["model"])
    params = list(model.parameters())
    losses, step = [], [t.zeros_like(p) for p in params]
    for x, y in inputs["batches"]:
        logits, _ = model(x)
        loss = cross_entropy(logits, y)
        grads = t.autograd.grad(loss, params)
        step = list(grads) if zero_grad else [s + g for s, g in zip(step, grads, strict=True)]
        if update:
            with t.no_grad():
                for p, g in zip(params, step, strict=True):
                    p -= LR * g
        losses.append(loss.item())
    return np.array(losses), _parameters(model)


def _score_training(inputs, values):
    batches = len(inputs["batches"])
    losses = array_value(values, "the losses")
    if losses.shape != (batches,):
        return Verdict.wrong(
            f"expected {batches} losses, one per batch, got an array of shape {losses.shape}"
        )
    with single_threaded():
        expected_losses, expected = _reference(inputs)
        piled_losses, piled = _reference(inputs, zero_grad=False)
        frozen_losses, frozen = _reference(inputs, update=False)
    frozen_hint = (
        "the parameters did not change: zero_grad() must come before backward(), "
        "not between backward() and step()"
    )
    return Verdict.from_hints(
        [
            compare(
                "the parameters after training",
                array_value(values, "the parameters after training"),
                expected,
                rtol=PARAMETER_RTOL,
                variants=[(piled, PILED_UP), (frozen, frozen_hint)],
            ),
            compare(
                "the losses",
                losses,
                expected_losses,
                rtol=PARAMETER_RTOL,
                variants=[(piled_losses, PILED_UP), (frozen_losses, frozen_hint)],
            ),
        ]
    )


EXERCISE = Exercise(
    "ex05",
    "Find the bug in a PyTorch training step",
    (
        Part("sequence_loss", 3, ("sequence_loss",), _loss_inputs, _collect_loss, _score_loss),
        Part(
            "train_steps",
            3,
            ("train_steps",),
            _training_inputs,
            _collect_training,
            _score_training,
            error_hints=(("backward through the graph a second time", PILED_UP),),
        ),
    ),
    kinds=("find-the-bug",),
)

# Library functions each part asks the learner to fix by hand: tripwires in the batch grader.
EXERCISE = EXERCISE.forbidding(
    {
        "sequence_loss": ("torch.nn.functional.cross_entropy", "bptt.rnn.cross_entropy_loss"),
    }
)
