"""From ``bptt.tasks`` (numpy) to torch tensors, and the stream layout of language models.

* :func:`to_tensors` - numpy arrays to tensors on the course device (floats to ``dtype``,
  integers to ``int64``);
* :func:`batchify` - cut one long id sequence into B parallel streams, shape (B, N): row b
  is the contiguous piece ``ids[b * N:(b + 1) * N]`` (Truncated BPTT, "stateful streams");
* :func:`next_token_pairs` - inputs and next-token targets of the streams, each (B, N - 1);
* :func:`iter_chunks` - consecutive time chunks of length k of a (B, T, ...) pair.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from bptt import _validate as v

from .contract import check_stream
from .device import resolve_device


def to_tensors(
    *arrays: np.ndarray,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | None = None,
) -> tuple[torch.Tensor, ...]:
    """Each numpy array as a tensor on ``device`` (``None``: the course default).

    Floating arrays become ``dtype`` (float32 for speed, float64 for checks), integer arrays
    ``int64`` (token ids, class targets). Other dtypes raise ``TypeError``.
    """
    device = resolve_device(device)
    out = []
    for i, array in enumerate(arrays):
        if not isinstance(array, np.ndarray):
            raise TypeError(f"arrays[{i}]: expected a numpy array, got {type(array).__name__}")
        if np.issubdtype(array.dtype, np.floating):
            target = dtype
        elif np.issubdtype(array.dtype, np.integer):
            target = torch.int64
        else:
            raise TypeError(f"arrays[{i}]: expected a float or integer array, got {array.dtype}")
        out.append(torch.from_numpy(np.ascontiguousarray(array)).to(device=device, dtype=target))
    return tuple(out)


def batchify(ids, batch_size: int, *, device: str | torch.device | None = None) -> torch.Tensor:
    """Lay ``ids`` (N_total,) out as ``batch_size`` contiguous streams, shape (B, N).

    N = N_total // B; the last N_total mod B ids are dropped. Stream b continues from one
    batch of time steps to the next, which is what lets truncated BPTT carry the hidden state
    across chunks.
    """
    v.integer("batch_size", batch_size, minimum=1)
    ids = torch.as_tensor(ids)
    if ids.dim() != 1 or ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise ValueError(
            f"ids: expected a 1-D sequence of integer ids, got {ids.dtype} of "
            f"shape {tuple(ids.shape)}"
        )
    n = ids.numel() // batch_size
    if n < 2:
        raise ValueError(
            f"ids: expected at least 2 * batch_size = {2 * batch_size} ids for "
            f"batch_size = {batch_size}, got {ids.numel()}"
        )
    return (
        ids[: n * batch_size]
        .reshape(batch_size, n)
        .to(device=resolve_device(device), dtype=torch.int64)
    )


def next_token_pairs(streams: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) = (streams[:, :-1], streams[:, 1:]), each (B, N - 1): predict the next id."""
    if not isinstance(streams, torch.Tensor) or streams.dim() != 2 or streams.shape[1] < 2:
        got = tuple(streams.shape) if isinstance(streams, torch.Tensor) else type(streams).__name__
        raise ValueError(f"streams: expected a tensor of shape (B, N) with N >= 2, got {got}")
    return streams[:, :-1], streams[:, 1:]


def iter_chunks(x: torch.Tensor, y: torch.Tensor, k: int) -> Iterator[tuple[torch.Tensor, ...]]:
    """Yield (x[:, t:t+k], y[:, t:t+k]) for t = 0, k, 2k, ...; the last chunk may be shorter.

    x and y are batch first, (B, T, ...), with the same B and T.
    """
    v.integer("k", k, minimum=1)
    check_stream(x, y)
    for start in range(0, x.shape[1], k):
        yield x[:, start : start + k], y[:, start : start + k]
