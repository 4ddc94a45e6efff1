"""The calling conventions every trainer of the course relies on, checked in one place.

* a stream is a pair x, y of batch-first tensors (B, T, ...) with the same B and T;
* a model is called like ``torch.nn.RNN``: ``model(x, state) -> (output, new_state)``;
* a loss is ``loss_fn(output, y) -> scalar tensor``.

Each check raises ``TypeError``/``ValueError`` naming the argument, what was expected and
what arrived.
"""

from __future__ import annotations

import torch


def check_stream(x, y) -> tuple[int, int]:
    """Validate a batch-first pair: tensors of shape (B, T, ...) with equal B >= 1, T >= 1."""
    for name, value in (("x", x), ("y", y)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                f"{name}: expected a tensor of shape (B, T, ...), got {type(value).__name__}"
            )
        if value.dim() < 2 or value.shape[0] < 1 or value.shape[1] < 1:
            raise ValueError(
                f"{name}: expected shape (B, T, ...) with B, T >= 1, got {tuple(value.shape)}"
            )
    if x.shape[:2] != y.shape[:2]:
        raise ValueError(
            f"y: expected the batch and time sizes of x, (B, T) = "
            f"{tuple(x.shape[:2])}, got {tuple(y.shape[:2])}"
        )
    return x.shape[0], x.shape[1]


def call_model(model, x: torch.Tensor, state):
    """``model(x, state)``, checking the ``torch.nn.RNN``-style contract of the course.

    ``model`` must return a pair ``(output, new_state)`` with ``output`` of shape
    (B, T_x, ...) (batch and time of ``x``) and a ``new_state`` that is not ``None``; anything
    else raises ``TypeError``/``ValueError`` naming ``model``.
    """
    result = model(x, state)
    if not isinstance(result, tuple) or len(result) != 2:
        raise TypeError(
            "model: expected model(x, state) to return a pair (output, new_state) "
            f"like torch.nn.RNN, got {type(result).__name__}"
        )
    output, new_state = result
    if new_state is None:
        raise TypeError(
            "model: returned new_state = None; truncated BPTT needs the state to "
            "carry into the next chunk"
        )
    expected = tuple(x.shape[:2])
    if not isinstance(output, torch.Tensor) or tuple(output.shape[:2]) != expected:
        got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ValueError(
            f"model: expected an output of shape (B, T, ...) with (B, T) = "
            f"{expected} (one output per input step), got {got}"
        )
    return output, new_state


def scalar_loss(loss_fn, output, target) -> torch.Tensor:
    """``loss_fn(output, target)``, checked to be a 0-d tensor (``ValueError`` naming loss_fn)."""
    loss = loss_fn(output, target)
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        got = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"loss_fn: expected a scalar tensor (a 0-d loss), got {got}")
    return loss


def token_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of batch-first logits (B, T, V) against ids (B, T).

    Targets equal to ``bptt.tasks.IGNORE_INDEX`` (-100) are left out of the mean, as in
    ``torch.nn.functional.cross_entropy``; exp of the result is the perplexity (Capstone: a character-level language model).
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3:
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(
            f"logits: expected a tensor of shape (B, T, V), one score per vocabulary entry at "
            f"every step, got shape {got}"
        )
    if not isinstance(targets, torch.Tensor) or tuple(targets.shape) != tuple(logits.shape[:2]):
        raise ValueError(
            f"targets: expected shape (B, T) = {tuple(logits.shape[:2])} for logits "
            f"(B, T, V) = {tuple(logits.shape)}, got "
            f"{tuple(targets.shape) if isinstance(targets, torch.Tensor) else type(targets).__name__}"
        )
    return torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets)
