"""Hidden state handling between chunks and batches ("Truncated BPTT").

A recurrent *state* is ``None`` (start from zeros), a tensor ``h`` of shape (B, H) (tanh RNN,
GRU), an ``(h, c)`` pair of (B, H) tensors (LSTM), or any nesting of tuples and lists of those
(a stack of layers). Rows of every tensor are the B parallel streams.

* ``detach_state`` cuts the graph: the values carry over to the next chunk, the gradient
  path does not (truncated BPTT, in "Truncated BPTT"). Forgetting it either fails with "Trying to
  backward through the graph a second time" or keeps every earlier chunk's graph alive.
* ``reset_state`` zeroes the streams where an independent sequence starts, so no
  information (and no gradient) leaks from one sequence into the next.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

State = torch.Tensor | tuple | list | None


def map_state(fn: Callable[[torch.Tensor], torch.Tensor], state: State) -> State:
    """Apply ``fn`` to every tensor of a (nested) state, keeping its tuple/list structure.

    ``None`` maps to ``None``; anything that is not a tensor, tuple, list or ``None`` raises
    ``TypeError`` naming ``state``.
    """
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return fn(state)
    if isinstance(state, (tuple, list)):
        return type(state)(map_state(fn, part) for part in state)
    raise TypeError(
        f"state: expected a tensor, a tuple/list of tensors or None, got {type(state).__name__}"
    )


def detach_state(state: State) -> State:
    """The same state with every tensor detached from the autograd graph (values shared).

    Works for a tensor, an ``(h, c)`` tuple, nested tuples/lists and ``None``.
    """
    return map_state(torch.Tensor.detach, state)


def reset_state(state: State, done: torch.Tensor | None = None) -> State:
    """Zero the streams of ``state`` whose flag in ``done`` (bool, shape (B,)) is set.

    With ``done=None`` every stream restarts and the result is ``None`` (the model then starts
    from zeros). Zeroing is by multiplication with a mask, so the gradient into the reset
    rows is zero too.
    """
    if done is None:
        return None
    if not isinstance(done, torch.Tensor) or done.dtype != torch.bool or done.dim() != 1:
        shape = tuple(done.shape) if isinstance(done, torch.Tensor) else type(done).__name__
        raise ValueError(f"done: expected a bool tensor of shape (B,), got {shape}")

    def zero_rows(h: torch.Tensor) -> torch.Tensor:
        if h.dim() < 1 or h.shape[0] != done.shape[0]:
            raise ValueError(
                f"state: expected tensors with B = {done.shape[0]} rows "
                f"(the length of done), got shape {tuple(h.shape)}"
            )
        keep = (~done).to(dtype=h.dtype, device=h.device)
        return h * keep.view(-1, *([1] * (h.dim() - 1)))

    return map_state(zero_rows, state)
