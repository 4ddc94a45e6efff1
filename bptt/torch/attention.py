"""Causal self-attention, the Transformer's answer to recurrence, and the measures that compare them.

The chapter BPTT and Transformers sets BPTT beside attention on four axes: how much of the work can run in parallel
over time, how much memory one sequence needs at inference, what streaming one more token
costs, and what training on long sequences costs. This module holds the attention side and the
measures the chapter needs:

* :class:`CausalSelfAttention` - one multi-head causal self-attention layer, (B, T, d) -> (B, T, d),
  with a parallel forward over all positions (:meth:`~CausalSelfAttention.prefill` also returns
  the keys and values as a :class:`KVCache`, :meth:`~CausalSelfAttention.kv_cache` only them)
  and an incremental :meth:`~CausalSelfAttention.step` that reads and extends the cache.
* :class:`KVCache` - the keys and values of every token seen so far; it grows by one row per token.
* :func:`kv_cache_bytes` and :func:`recurrent_state_bytes` - the inference memory of one layer
  of each kind, as formulas to compare with the measured sizes.
* :func:`graph_depth` - the longest chain of autograd nodes behind a tensor: the number of
  backward operations that must run one after another, whatever the hardware.

The layer (BPTT and Transformers, equation ``attention-layer``), batch first, head ``j`` of ``n_heads``::

    q_t = W_q x_t,  k_s = W_k x_s,  v_s = W_v x_s          each split into heads of size d / n_heads
    a_ts = softmax_{s <= t}( q_t . k_s / sqrt(d / n_heads) )   causal: step t sees s = 1 .. t only
    y_t = W_o concat_j( sum_{s <= t} a_ts v_s )

The forward pass is written out with explicit matrix products rather than a fused kernel, so
the (B, n_heads, T, T) attention matrix that autograd saves is visible to memory measurements.
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import torch

from bptt import _validate as v

__all__ = [
    "CausalSelfAttention",
    "KVCache",
    "graph_depth",
    "kv_cache_bytes",
    "recurrent_state_bytes",
]


def _float_dtype(name: str, value: object) -> torch.dtype:
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        raise TypeError(f"{name}: expected a floating torch.dtype such as torch.float32, got {value!r}")
    return value


def _torch_generator(name: str, value: object) -> torch.Generator:
    if isinstance(value, torch.Generator):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return torch.Generator().manual_seed(int(value))
    raise TypeError(f"{name}: expected a torch.Generator or an integer seed, got {value!r}")


@dataclasses.dataclass(frozen=True)
class KVCache:
    """Keys and values of the tokens a :class:`CausalSelfAttention` layer has seen (BPTT and Transformers).

    ``keys`` and ``values`` have shape (B, n_heads, t, d / n_heads) after ``t`` tokens; each
    :meth:`CausalSelfAttention.step` returns a new cache one token longer. Its size in bytes,
    ``2 B t d`` values, grows linearly with ``t``: this is the memory a Transformer holds per
    sequence at inference, where a recurrent network holds a fixed state.
    """

    keys: torch.Tensor
    values: torch.Tensor

    def __post_init__(self) -> None:
        for name in ("keys", "values"):
            tensor = getattr(self, name)
            if not isinstance(tensor, torch.Tensor):
                raise TypeError(f"{name}: expected a torch.Tensor of shape (B, n_heads, t, d_head), "
                                f"got {type(tensor).__name__}")
            if tensor.dim() != 4:
                raise ValueError(f"{name}: expected a 4-D tensor of shape (B, n_heads, t, d_head), "
                                 f"got shape {tuple(tensor.shape)}")
        if self.keys.shape != self.values.shape:
            raise ValueError(f"values: expected the shape of keys {tuple(self.keys.shape)}, "
                             f"got {tuple(self.values.shape)}")

    @property
    def length(self) -> int:
        """Number of tokens ``t`` held."""
        return self.keys.shape[2]

    @property
    def nbytes(self) -> int:
        """Bytes held by the keys and values: ``2 B t d`` times the size of one value."""
        return self.keys.nbytes + self.values.nbytes

    def extended(self, keys: torch.Tensor, values: torch.Tensor) -> KVCache:
        """A new cache with ``keys`` and ``values`` of shape (B, n_heads, 1, d_head) appended."""
        return KVCache(torch.cat([self.keys, keys], dim=2), torch.cat([self.values, values], dim=2))


class CausalSelfAttention(torch.nn.Module):
    """One causal multi-head self-attention layer, the alternative to recurrence (BPTT and Transformers).

    Implements equation ``attention-layer`` of BPTT and Transformers (see the module docstring).
    ``forward`` takes a whole sequence x of shape (B, T, d_model) and returns y of the same
    shape, every position computed at once (``prefill`` also returns the cache); ``step`` takes
    one token x_t of shape (B, d_model) and a cache, and returns y_t of shape (B, d_model) and
    the cache one token longer. Run over a sequence, ``step`` reproduces ``forward`` (up to
    rounding), and so does ``prefill`` of a prompt followed by ``step`` over the rest.

    Parameters
    ----------
    d_model : int >= 1
        Width d of the tokens.
    n_heads : int >= 1
        Number of heads; must divide ``d_model``.
    seed : int or torch.Generator
        Source of the initial weights (entries N(0, 1 / d_model)); no global random state.
    dtype : floating torch.dtype
        Dtype of the weights; inputs must have the same dtype.
    """

    def __init__(self, d_model: int, n_heads: int = 1, *, seed: int | torch.Generator = 0,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        d_model = v.integer("d_model", d_model, minimum=1)
        n_heads = v.integer("n_heads", n_heads, minimum=1)
        if d_model % n_heads:
            raise ValueError(f"n_heads: expected a divisor of d_model = {d_model}, got {n_heads}")
        dtype = _float_dtype("dtype", dtype)
        generator = _torch_generator("seed", seed)
        self.d_model, self.n_heads, self.d_head = d_model, n_heads, d_model // n_heads
        std = 1.0 / math.sqrt(d_model)
        # W_q, W_k, W_v stacked as one (3 d, d) matrix, and the output projection W_o (d, d).
        self.W_qkv = torch.nn.Parameter(
            std * torch.randn(3 * d_model, d_model, generator=generator, dtype=dtype))
        self.W_o = torch.nn.Parameter(
            std * torch.randn(d_model, d_model, generator=generator, dtype=dtype))

    def _check(self, name: str, x: object, shape: str, rank: int) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor of shape {shape}, got {type(x).__name__}")
        if x.dim() != rank or x.shape[-1] != self.d_model or 0 in x.shape:
            raise ValueError(f"{name}: expected a non-empty tensor of shape {shape} with "
                             f"d_model = {self.d_model}, got shape {tuple(x.shape)}")
        if x.dtype != self.W_o.dtype:
            raise TypeError(f"{name}: expected dtype {self.W_o.dtype} (the layer's), got {x.dtype}")
        return x

    def _heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k, v of shape (B, n_heads, T, d_head) from x of shape (B, T, d_model)."""
        B, T, _ = x.shape
        qkv = (x @ self.W_qkv.T).view(B, T, 3, self.n_heads, self.d_head)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        return q, k, v

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                mask: torch.Tensor | None) -> torch.Tensor:
        """Softmax-weighted values, heads merged and projected: (B, T_q, d_model)."""
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.d_head)  # (B, n_heads, T_q, T_k)
        if mask is not None:
            scores = scores.masked_fill(mask, float("-inf"))
        mixed = torch.softmax(scores, dim=-1) @ v  # (B, n_heads, T_q, d_head)
        B, _, T_q, _ = mixed.shape
        return mixed.transpose(1, 2).reshape(B, T_q, self.d_model) @ self.W_o.T

    def prefill(self, x: torch.Tensor) -> tuple[torch.Tensor, KVCache]:
        """The parallel pass over a prompt x (B, T, d_model): (y (B, T, d_model), its KVCache).

        Every position is computed at once, with the causal mask hiding s > t; the keys and
        values are returned as a cache of length T, so that :meth:`step` can continue the
        sequence one token at a time (how a Transformer generates text).
        """
        x = self._check("x", x, "(B, T, d_model)", 3)
        T = x.shape[1]
        q, k, v = self._heads(x)
        future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)  # s > t is masked
        return self._attend(q, k, v, future), KVCache(k, v)

    def kv_cache(self, x: torch.Tensor) -> KVCache:
        """The cache that :meth:`prefill` returns for a prompt x (B, T, d_model), without the
        outputs: only the key and value projections, O(T d^2) work and no (T, T) matrix."""
        x = self._check("x", x, "(B, T, d_model)", 3)
        _, k, v = self._heads(x)
        return KVCache(k, v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """y = attention(x) for x of shape (B, T, d_model); y has the same shape."""
        return self.prefill(x)[0]

    def step(self, x_t: torch.Tensor, cache: KVCache | None = None) -> tuple[torch.Tensor, KVCache]:
        """One token of incremental decoding: x_t (B, d_model) -> (y_t (B, d_model), longer cache).

        The new token's key and value are appended to ``cache`` (a new one when None) and its
        query attends to every cached token, so the cost of this step grows with the cache.
        """
        x_t = self._check("x_t", x_t, "(B, d_model)", 2)
        if cache is not None and not isinstance(cache, KVCache):
            raise TypeError(f"cache: expected a KVCache or None, got {type(cache).__name__}")
        q, k, v = self._heads(x_t[:, None, :])
        if cache is None:
            cache = KVCache(k, v)
        else:
            expected = (x_t.shape[0], self.n_heads, self.d_head)
            got = (cache.keys.shape[0], cache.keys.shape[1], cache.keys.shape[3])
            if got != expected:
                raise ValueError(f"cache: expected keys of shape (B, n_heads, t, d_head) = "
                                 f"({expected[0]}, {expected[1]}, t, {expected[2]}), "
                                 f"got {tuple(cache.keys.shape)}")
            cache = cache.extended(k, v)
        return self._attend(q, cache.keys, cache.values, None)[:, 0], cache


def kv_cache_bytes(tokens: int, d_model: int, *, n_layers: int = 1, batch: int = 1,
                   dtype: torch.dtype = torch.float32) -> int:
    """Bytes of the key-value cache after ``tokens`` tokens: ``2 * n_layers * batch * tokens * d_model``
    values (BPTT and Transformers). Grows linearly with the number of tokens.
    """
    tokens = v.integer("tokens", tokens, minimum=0)
    d_model = v.integer("d_model", d_model, minimum=1)
    n_layers = v.integer("n_layers", n_layers, minimum=1)
    batch = v.integer("batch", batch, minimum=1)
    return 2 * n_layers * batch * tokens * d_model * _float_dtype("dtype", dtype).itemsize


def recurrent_state_bytes(hidden: int, *, n_layers: int = 1, batch: int = 1, n_state_tensors: int = 1,
                          dtype: torch.dtype = torch.float32) -> int:
    """Bytes of a recurrent network's state: ``n_layers * batch * n_state_tensors * hidden`` values
    (BPTT and Transformers). ``n_state_tensors`` is 1 for a tanh RNN or GRU (h) and 2 for an LSTM (h, c).
    The same after one token or a million.
    """
    hidden = v.integer("hidden", hidden, minimum=1)
    n_layers = v.integer("n_layers", n_layers, minimum=1)
    batch = v.integer("batch", batch, minimum=1)
    n_state_tensors = v.integer("n_state_tensors", n_state_tensors, minimum=1)
    itemsize = _float_dtype("dtype", dtype).itemsize
    return n_layers * batch * n_state_tensors * hidden * itemsize


def graph_depth(output: torch.Tensor) -> int:
    """Length of the longest chain of autograd nodes behind ``output`` (BPTT and Transformers).

    Each node is one backward operation; a node can run only after every node on the path from
    ``output`` to it. The longest path therefore counts the backward operations that must run
    one after another however many processors there are. The leaves' gradient accumulators are
    not counted. A recurrent network unrolled over T steps has a depth proportional to T; a
    self-attention layer has a depth that does not grow with T (a node or two of reshaping
    may differ when T or B is 1).

    Raises ValueError for a tensor that is not part of a graph (no ``grad_fn``).
    """
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"output: expected a torch.Tensor, got {type(output).__name__}")
    if output.grad_fn is None:
        raise ValueError("output: expected a tensor computed from tensors that require grad "
                         f"(a grad_fn), got a tensor of shape {tuple(output.shape)} without one")
    depth: dict[object, int] = {}
    stack = [(output.grad_fn, False)]
    while stack:  # iterative post-order: a graph of a long sequence is deeper than Python's stack
        node, children_done = stack.pop()
        if node in depth:
            continue
        children = [n for n, _ in node.next_functions if n is not None]
        if children_done:
            counted = 0 if type(node).__name__ == "AccumulateGrad" else 1
            depth[node] = counted + max((depth[c] for c in children), default=0)
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children if c not in depth)
    return depth[output.grad_fn]
