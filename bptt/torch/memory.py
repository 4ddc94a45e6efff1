"""How much memory backpropagation keeps: saved-for-backward bytes and the CUDA peak ("The cost
of BPTT").

Autograd keeps, for every operation of the forward pass, the tensors its backward needs
(inputs of a matmul, outputs of a tanh, ...). :class:`SavedTensorTracker` watches them with
``torch.autograd.graph.saved_tensors_hooks``:

* every saved tensor is charged by its *storage* (the memory block it lives in), and each
  storage once, however many views of it are saved (h_{t-1} saved by step t's matmul and
  h_t saved by step t's tanh are the same block);
* a storage stops counting when the graph that saved it is freed (after ``backward()``), so
  ``peak_bytes`` is the most memory autograd held at any moment - flat in T for truncated
  BPTT, linear for full BPTT;
* storages of ``exclude`` (parameters, the input data) are not charged: they exist anyway.

The count is exact and deterministic on the CPU; on a GPU :func:`cuda_peak_bytes` gives the
allocator's peak as well, which includes everything (activations, gradients, workspace).

Saved tensors are not all the memory a graph holds: every operation also leaves an autograd
*node* (its backward function, its edges, shapes and scalars), and ``torch.utils.checkpoint``
(non-reentrant) keeps the nodes of the whole sequence while it drops their tensors. On the CPU
:func:`heap_in_use` reads the C allocator's count of bytes in use (glibc ``mallinfo2``), which
sees both: tensors and nodes alike; :func:`heap_held` measures what a call leaves allocated and
:class:`HeapPeak` samples the heap at every saved tensor to find the peak of a run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn


def _storage_key(t: torch.Tensor) -> tuple[str, int]:
    return str(t.device), t.untyped_storage().data_ptr()


def _exclude_keys(exclude) -> set:
    tensors: list[torch.Tensor] = []
    for item in exclude:
        if isinstance(item, nn.Module):
            tensors.extend(item.parameters())
            tensors.extend(item.buffers())
        elif isinstance(item, torch.Tensor):
            tensors.append(item)
        else:
            raise TypeError(f"exclude: expected tensors or modules, got {type(item).__name__}")
    return {_storage_key(t) for t in tensors}


class _Saved:
    """What autograd stores instead of the tensor; tells the tracker when it is freed."""

    __slots__ = ("key", "tensor", "tracker")

    def __init__(self, tensor, tracker, key):
        self.tensor, self.tracker, self.key = tensor, tracker, key

    def __del__(self):
        self.tracker._release(self.key)


class SavedTensorTracker:
    """Context manager that measures the bytes autograd saves for backward.

    Attributes (bytes): ``live_bytes`` held now, ``peak_bytes`` the maximum of
    ``live_bytes``, ``total_bytes`` of every distinct storage ever saved; ``n_saved`` counts
    the save events. Graphs built inside the ``with`` block are tracked until they are freed,
    also when ``backward()`` runs after the block.

    Usage::

        with SavedTensorTracker(exclude=[model, x, y]) as tracker:
            loss_fn(model(x)[0], y).backward()
        tracker.peak_bytes
    """

    def __init__(self, exclude: Iterable = ()) -> None:
        self._exclude = _exclude_keys(exclude)
        self._live: dict[tuple, list] = {}  # key -> [number of saved references, nbytes]
        self.live_bytes = self.peak_bytes = self.total_bytes = self.n_saved = 0
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)

    def _pack(self, tensor: torch.Tensor):
        key = _storage_key(tensor)
        if key in self._exclude:
            return tensor
        self.n_saved += 1
        entry = self._live.get(key)
        if entry is None:
            nbytes = tensor.untyped_storage().nbytes()
            self._live[key] = [1, nbytes]
            self.live_bytes += nbytes
            self.total_bytes += nbytes
            self.peak_bytes = max(self.peak_bytes, self.live_bytes)
        else:
            entry[0] += 1
        return _Saved(tensor, self, key)

    @staticmethod
    def _unpack(saved):
        return saved.tensor if isinstance(saved, _Saved) else saved

    def _release(self, key) -> None:
        entry = self._live[key]
        entry[0] -= 1
        if entry[0] == 0:
            self.live_bytes -= entry[1]
            del self._live[key]

    def __enter__(self):
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)


def saved_bytes(fn: Callable[[], object], *, exclude: Iterable = ()) -> int:
    """Peak bytes autograd held while ``fn()`` ran (see :class:`SavedTensorTracker`).

    For a forward pass alone this is what the graph keeps for its backward; for a whole
    training step (forward + backward, or many TBPTT updates) it is the high-water mark.
    ``fn`` must be a callable without arguments (``TypeError`` otherwise): wrap a call with
    arguments in a ``lambda`` or ``functools.partial``.
    """
    if not callable(fn):
        raise TypeError(
            f"fn: expected a callable without arguments, e.g. lambda: loss.backward(), "
            f"got {type(fn).__name__} {fn!r}"
        )
    with SavedTensorTracker(exclude) as tracker:
        fn()
    return tracker.peak_bytes


def heap_in_use() -> int | None:
    """Bytes the C allocator has handed out and not freed (glibc ``mallinfo2``: ``uordblks``,
    in-use chunks of every arena, plus ``hblkhd``, blocks served by mmap), or None where
    ``mallinfo2`` does not exist (not glibc, glibc < 2.33).

    torch's CPU tensors (data and metadata) and autograd's nodes live here; Python's small
    objects do not (pymalloc has its own arenas), so a graph of tensors is counted in full
    and a list of Python floats is not.
    """
    import ctypes

    class _Mallinfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    try:
        fn = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _Mallinfo2
    info = fn()
    return int(info.uordblks + info.hblkhd)


def heap_held(fn: Callable[[], object]) -> tuple[int | None, object]:
    """``(bytes, result)``: heap in use after ``fn()`` minus before, with ``result`` (what
    ``fn`` returned, for example a loss whose graph is still alive) kept until the count is
    taken. For a forward pass this is everything its graph holds: saved tensors, nodes, the
    outputs. None for the bytes where :func:`heap_in_use` is unavailable."""
    if not callable(fn):
        raise TypeError(f"fn: expected a callable without arguments, got {type(fn).__name__}")
    import gc

    gc.collect()
    before = heap_in_use()
    result = fn()
    after = heap_in_use()
    return (None if before is None else after - before), result


class HeapPeak:
    """Context manager: the peak heap in use (bytes above the start), sampled whenever autograd
    saves a tensor and at the end of the block (``peak_bytes``; None without ``mallinfo2``).

    The samples fall where graphs grow (every saved tensor of a forward pass), so the peak of a
    training loop, which is reached at the end of a window's forward pass, is seen; memory
    taken between two saves and freed again (inside one kernel) is not.
    """

    def __init__(self) -> None:
        self.baseline = self.peak = None
        self.peak_bytes: int | None = None
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)

    def _sample(self) -> None:
        now = heap_in_use()
        if now is not None and (self.peak is None or now > self.peak):
            self.peak = now

    def _pack(self, tensor):
        self._sample()
        return tensor

    def __enter__(self):
        import gc

        gc.collect()
        self.baseline = heap_in_use()
        self.peak = self.baseline
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)
        self._sample()
        if self.baseline is not None:
            self.peak_bytes = self.peak - self.baseline


def cuda_peak_bytes(fn: Callable[[], object], device: str | torch.device) -> int:
    """Peak CUDA memory allocated while ``fn()`` ran, above what was allocated before.

    ``device`` must be a CUDA device (``ValueError`` otherwise).
    """
    device = torch.device(device)
    if device.type != "cuda":
        raise ValueError(f"device: expected a CUDA device, got {device}")
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before
