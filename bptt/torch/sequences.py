"""Teacher forcing, padded batches and both directions (the chapter of that title).

Three practical topics of sequence training, each with the small models the chapter trains
over several seeds at once. Every model here carries a leading *seed axis* S: member s owns its
parameters, drawn from its own ``torch.Generator`` seeded with ``seeds[s]``, and its own data, so
one batched pass trains S independent networks (the runs they would make alone).

* Output recurrence (Goodfellow et al., sec. 10.2.1). :class:`OutputFeedbackNet` has no hidden
  recurrence: its only link from step t-1 to step t is the previous output,

      h_t = tanh(W_xh x_t + W_yh e(y_{t-1}) + b),   o_t = W_hy h_t + b_y,

  where e(y) is the one-hot code of a symbol (e(y_0) = 0). Fed the true y_{t-1} (*teacher
  forcing*) the T steps are independent given the data, so the gradient is a sum of per-step
  gradients and needs no backpropagation through time. Fed its own greedy output (*free
  running*) it meets inputs it never saw in training (*exposure bias*); *scheduled sampling*
  (Bengio et al., 2015) feeds its own output with a probability that grows during training.
* Variable lengths. :func:`pad_batch`, :func:`length_mask`, :func:`masked_mean` and
  :func:`last_real_state` are the pieces of a correct padded batch; :class:`SeedRNN` runs the
  course's tanh RNN (``h_t = tanh(W_xh x_t + W_hh h_{t-1} + b)``) over a padded batch and takes
  its final state either at each sequence's last real step or, the classic bug, at the padded end.
* Both directions. :class:`SeedBiRNN` runs one tanh RNN forwards and one backwards over the
  sequence and reads out both states at each step (Schuster and Paliwal, 1997).

Shapes are batch first: x (S, B, T, D) with the seed axis in front, symbols y (S, B, T) int64,
lengths (S, B) or (B,).
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch.nn import functional as F

from bptt import _validate as v

# --------------------------------------------------------------------------------------------
# input checks


def _tensor(name: str, value, dims: int, *, floating: bool | None = None) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor with {dims} dimensions, "
                        f"got {type(value).__name__}")
    if value.dim() != dims:
        raise ValueError(f"{name}: expected {dims} dimensions, got shape {tuple(value.shape)}")
    if floating is True and not value.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {value.dtype}")
    if floating is False and value.dtype != torch.long:
        raise TypeError(f"{name}: expected an int64 tensor, got dtype {value.dtype}")
    return value


def _lengths(lengths, B: int, T: int) -> torch.Tensor:
    """lengths as an int64 tensor of shape (B,) (or (S, B)) with every entry in 1..T."""
    if not isinstance(lengths, torch.Tensor):
        lengths = torch.as_tensor(lengths)
    if lengths.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise TypeError(f"lengths: expected integers, got dtype {lengths.dtype}")
    if lengths.dim() == 0 or lengths.shape[-1] != B:
        raise ValueError(f"lengths: expected shape (B,) or (S, B) with B = {B}, "
                         f"got {tuple(lengths.shape)}")
    if lengths.numel() and (lengths.min() < 1 or lengths.max() > T):
        raise ValueError(f"lengths: expected every length in 1..T = 1..{T}, got values from "
                         f"{int(lengths.min())} to {int(lengths.max())}")
    return lengths.long()


def _fraction(name: str, value) -> float:
    """A number in [0, 1] (a probability that may be zero)."""
    value = v.real(name, value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: expected a number in [0, 1], got {value!r}")
    return value


def _seeds(seeds) -> tuple[int, ...]:
    seeds = tuple(v.integer("seeds[i]", s, minimum=0) for s in seeds)
    if not seeds:
        raise ValueError("seeds: expected at least one seed, got none")
    return seeds


def _uniform(generators, shape, bound: float, dtype) -> torch.Tensor:
    """One (S, *shape) tensor, member s drawn U(-bound, bound) from generators[s]."""
    blocks = [(torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1) * bound
              for g in generators]
    return torch.stack(blocks).to(dtype).requires_grad_(True)


# --------------------------------------------------------------------------------------------
# padded batches


def length_mask(lengths, T: int) -> torch.Tensor:
    """m with m[..., t] = (t < lengths[...]): True at the real steps, False at the padding.

    ``lengths`` (B,) or (S, B) integers in 1..T -> bool mask (B, T) or (S, B, T).
    """
    T = v.integer("T", T, minimum=1)
    lengths = torch.as_tensor(lengths)
    lengths = _lengths(lengths, lengths.shape[-1] if lengths.dim() else -1, T)
    return torch.arange(T, device=lengths.device) < lengths[..., None]


def pad_batch(sequences, *, pad_value: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """A list of B tensors (T_i, D) (or (T_i,) ids) -> (padded (B, T_max, ...), lengths (B,)).

    Step t of sequence i sits at ``padded[i, t]`` for t < T_i; the rest is ``pad_value``.
    """
    sequences = list(sequences)
    if not sequences:
        raise ValueError("sequences: expected at least one sequence, got none")
    for i, seq in enumerate(sequences):
        if not isinstance(seq, torch.Tensor) or seq.dim() < 1 or seq.shape[0] < 1:
            got = tuple(seq.shape) if isinstance(seq, torch.Tensor) else type(seq).__name__
            raise ValueError(f"sequences[{i}]: expected a tensor (T_i, ...) with T_i >= 1, got {got}")
        if seq.shape[1:] != sequences[0].shape[1:] or seq.dtype != sequences[0].dtype:
            raise ValueError(f"sequences[{i}]: expected trailing shape {tuple(sequences[0].shape[1:])}"
                             f" and dtype {sequences[0].dtype} like sequences[0], got "
                             f"{tuple(seq.shape[1:])} and {seq.dtype}")
    lengths = torch.tensor([seq.shape[0] for seq in sequences])
    padded = sequences[0].new_full((len(sequences), int(lengths.max()), *sequences[0].shape[1:]),
                                   pad_value)
    for i, seq in enumerate(sequences):
        padded[i, : seq.shape[0]] = seq
    return padded, lengths


def masked_mean(values: torch.Tensor, lengths) -> torch.Tensor:
    """The mean of ``values`` (..., B, T) over the real steps only: sum_{i, t < T_i} / sum_i T_i.

    This is the loss of the B sequences taken one by one, each summed over its own T_i steps,
    divided by the number of real steps (eq. `sequences-masked-loss`). Over a seed axis
    ((S, B, T) values, (S, B) lengths) it returns one mean per seed, shape (S,).
    """
    values = torch.as_tensor(values)
    if values.dim() not in (2, 3):
        raise ValueError(f"values: expected shape (B, T) or (S, B, T), got {tuple(values.shape)}")
    B, T = values.shape[-2:]
    mask = length_mask(_lengths(lengths, B, T).to(values.device), T)
    mask = mask.expand_as(values).to(values.dtype)
    return (values * mask).sum((-2, -1)) / mask.sum((-2, -1))


def last_real_state(h: torch.Tensor, lengths) -> torch.Tensor:
    """h (..., B, T, H) -> (..., B, H), the state at each sequence's last real step T_i."""
    h = torch.as_tensor(h)
    if h.dim() not in (3, 4):
        raise ValueError(f"h: expected shape (B, T, H) or (S, B, T, H), got {tuple(h.shape)}")
    B, T, H = h.shape[-3:]
    lengths = _lengths(lengths, B, T).to(h.device).expand(h.shape[:-2])
    index = (lengths - 1)[..., None, None].expand(*h.shape[:-2], 1, H)
    return h.gather(-2, index).squeeze(-2)


def variable_length_batch(B: int, T: int, K: int, *, min_length: int = 1,
                          generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """B random symbol sequences, lengths uniform in min_length..T, padded with the id -1.

    Returns (symbols (B, T) int64 with -1 at the padding, lengths (B,)).
    """
    B, T, K = (v.integer(n, x, minimum=1) for n, x in (("B", B), ("T", T), ("K", K)))
    min_length = v.integer("min_length", min_length, minimum=1)
    if min_length > T:
        raise ValueError(f"min_length: expected at most T = {T}, got {min_length}")
    lengths = torch.randint(min_length, T + 1, (B,), generator=generator)
    symbols = torch.randint(0, K, (B, T), generator=generator)
    return symbols.masked_fill(~length_mask(lengths, T), -1), lengths


def one_hot(symbols: torch.Tensor, K: int, dtype=torch.float64) -> torch.Tensor:
    """e(y): one-hot codes (..., K) of ids in 0..K-1; the padding id -1 maps to the zero vector."""
    symbols = _tensor("symbols", symbols, symbols.dim() if isinstance(symbols, torch.Tensor) else 1,
                      floating=False)
    if symbols.numel() and (symbols.min() < -1 or symbols.max() >= K):
        raise ValueError(f"symbols: expected ids in 0..K-1 = 0..{K - 1} (or -1 for padding), "
                         f"got values from {int(symbols.min())} to {int(symbols.max())}")
    return F.one_hot(symbols.clamp(min=0), K).to(dtype) * (symbols >= 0)[..., None].to(dtype)


# --------------------------------------------------------------------------------------------
# tanh RNNs with a seed axis


class SeedRNN:
    """S independent tanh RNNs over padded batches, ``h_t = tanh(W_xh x_t + W_hh h_{t-1} + b)``.

    Parameters (S, ...): ``W_xh`` (S, H, D), ``W_hh`` (S, H, H), ``b`` (S, H), ``W_hy`` (S, Q, H),
    ``b_y`` (S, Q); member s is drawn U(-1/sqrt(H), 1/sqrt(H)) (biases zero) from its own
    generator seeded with ``seeds[s]``. :meth:`states` runs the recurrence; ``reverse=True`` runs
    it from each sequence's last real step back to its first (the backward half of
    :class:`SeedBiRNN`).
    """

    def __init__(self, seeds, D: int, H: int, Q: int, *, dtype=torch.float64):
        self.seeds = _seeds(seeds)
        self.D, self.H, self.Q = (v.integer(n, x, minimum=1) for n, x in (("D", D), ("H", H), ("Q", Q)))
        gens = [torch.Generator().manual_seed(s) for s in self.seeds]
        bound = 1.0 / math.sqrt(H)
        self.params = {
            "W_xh": _uniform(gens, (H, D), bound, dtype),
            "W_hh": _uniform(gens, (H, H), bound, dtype),
            "b": torch.zeros(len(self.seeds), H, dtype=dtype, requires_grad=True),
            "W_hy": _uniform(gens, (Q, H), bound, dtype),
            "b_y": torch.zeros(len(self.seeds), Q, dtype=dtype, requires_grad=True),
        }

    def _check(self, x: torch.Tensor) -> None:
        _tensor("x", x, 4, floating=True)
        if x.shape[0] != len(self.seeds) or x.shape[3] != self.D:
            raise ValueError(f"x: expected shape (S, B, T, D) with S = {len(self.seeds)}, "
                             f"D = {self.D}, got {tuple(x.shape)}")

    def states(self, x: torch.Tensor, lengths=None, *, reverse: bool = False,
               detach: bool = False) -> torch.Tensor:
        """h (S, B, T, H) of the RNN over x (S, B, T, D); with ``lengths`` the state is frozen
        after each sequence's end (forward) or starts at its last real step (``reverse``).
        ``detach=True`` cuts the graph between steps (h_{t-1} enters step t as a constant), so
        a gradient stops after one step: the world where there is no BPTT."""
        self._check(x)
        p = self.params
        S, B, T, _ = x.shape
        mask = (torch.ones(S, B, T, dtype=torch.bool) if lengths is None
                else length_mask(_lengths(lengths, B, T), T).expand(S, B, T))
        drive = torch.einsum("sbtd,shd->sbth", x, p["W_xh"]) + p["b"][:, None, None, :]
        W_hh_T = p["W_hh"].transpose(1, 2)
        h = x.new_zeros(S, B, self.H)
        out = [None] * T
        for t in (reversed(range(T)) if reverse else range(T)):
            new = torch.tanh(drive[:, :, t] + torch.bmm(h.detach() if detach else h, W_hh_T))
            m = mask[:, :, t, None]
            h = torch.where(m, new, h)  # padding steps leave the state as it was
            out[t] = h
        return torch.stack(out, dim=2)

    def readout(self, h: torch.Tensor) -> torch.Tensor:
        """o = W_hy h + b_y for h (S, B, ..., H) -> (S, B, ..., Q)."""
        flat = h.reshape(h.shape[0], -1, h.shape[-1])
        o = torch.baddbmm(self.params["b_y"][:, None, :], flat, self.params["W_hy"].transpose(1, 2))
        return o.reshape(*h.shape[:-1], self.Q)

    def classify(self, x: torch.Tensor, lengths, *, final: str = "last_real") -> torch.Tensor:
        """Logits (S, B, Q) read out from the final state of each sequence.

        ``final="last_real"``: the state at step T_i (correct); ``final="padded_end"``: the
        state after running on through the padding to step T (the classic bug; the padding
        inputs are whatever x holds there, zeros for :func:`pad_batch`).
        """
        v.choice("final", final, ("last_real", "padded_end"))
        if final == "last_real":
            h = last_real_state(self.states(x), lengths)
        else:
            h = self.states(x)[:, :, -1]
        return self.readout(h)

    def parameters(self) -> list[torch.Tensor]:
        return list(self.params.values())


class SeedBiRNN:
    """S bidirectional tanh RNNs: a forward RNN (states h^f_t, steps 1..T) and a backward RNN
    (states h^b_t, steps T..1), read out together, o_t = W_hy [h^f_t; h^b_t] + b_y.

    Parameters: those of two :class:`SeedRNN` cores of H units each (``forward``, ``backward``,
    their own read-outs unused) and one read-out ``W_hy`` (S, Q, 2H), ``b_y`` (S, Q).
    """

    def __init__(self, seeds, D: int, H: int, Q: int, *, dtype=torch.float64):
        self.seeds = _seeds(seeds)
        self.D, self.H, self.Q = D, H, Q
        self.forward = SeedRNN(self.seeds, D, H, Q, dtype=dtype)
        self.backward = SeedRNN(tuple(s + 10_000 for s in self.seeds), D, H, Q, dtype=dtype)
        gens = [torch.Generator().manual_seed(s + 20_000) for s in self.seeds]
        self.params = {
            "W_hy": _uniform(gens, (Q, 2 * H), 1.0 / math.sqrt(2 * H), dtype),
            "b_y": torch.zeros(len(self.seeds), Q, dtype=dtype, requires_grad=True),
        }

    def logits(self, x: torch.Tensor, lengths=None) -> torch.Tensor:
        """o (S, B, T, Q) for x (S, B, T, D)."""
        h = torch.cat([self.forward.states(x, lengths), self.backward.states(x, lengths, reverse=True)],
                      dim=-1)
        S, B, T, _ = h.shape
        o = torch.baddbmm(self.params["b_y"][:, None, :], h.reshape(S, B * T, -1),
                          self.params["W_hy"].transpose(1, 2))
        return o.reshape(S, B, T, self.Q)

    def parameters(self) -> list[torch.Tensor]:
        core = ("W_xh", "W_hh", "b")
        return ([self.forward.params[n] for n in core] + [self.backward.params[n] for n in core]
                + list(self.params.values()))


class SeedUniRNN(SeedRNN):
    """A unidirectional :class:`SeedRNN` that reads out every step, o_t = W_hy h_t + b_y."""

    def logits(self, x: torch.Tensor, lengths=None, *, detach: bool = False) -> torch.Tensor:
        """o (S, B, T, Q) for x (S, B, T, D) (``detach``: see :meth:`SeedRNN.states`)."""
        return self.readout(self.states(x, lengths, detach=detach))


def parameter_count(model) -> int:
    """Number of trainable numbers of one member of a seed-axis model (its S copies count once)."""
    return sum(p[0].numel() for p in model.parameters())


# --------------------------------------------------------------------------------------------
# output recurrence


class OutputFeedbackNet:
    """S networks whose only recurrence is through the previous output (module docstring).

    ``h_t = tanh(W_xh x_t + W_yh e(y_{t-1}) + b)``, ``o_t = W_hy h_t + b_y`` with e(y_0) = 0.
    Parameters (S, ...): ``W_xh`` (S, H, D), ``W_yh`` (S, H, K), ``b`` (S, H), ``W_hy`` (S, K, H),
    ``b_y`` (S, K), drawn like :class:`SeedRNN`'s.
    """

    def __init__(self, seeds, D: int, H: int, K: int, *, dtype=torch.float64):
        self.seeds = _seeds(seeds)
        self.D, self.H, self.K = (v.integer(n, x, minimum=1) for n, x in (("D", D), ("H", H), ("K", K)))
        gens = [torch.Generator().manual_seed(s) for s in self.seeds]
        bound = 1.0 / math.sqrt(H)
        self.params = {
            "W_xh": _uniform(gens, (H, D), bound, dtype),
            "W_yh": _uniform(gens, (H, K), bound, dtype),
            "b": torch.zeros(len(self.seeds), H, dtype=dtype, requires_grad=True),
            "W_hy": _uniform(gens, (K, H), bound, dtype),
            "b_y": torch.zeros(len(self.seeds), K, dtype=dtype, requires_grad=True),
        }

    def parameters(self) -> list[torch.Tensor]:
        return list(self.params.values())

    def _check(self, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
        _tensor("x", x, 4, floating=True)
        if x.shape[0] != len(self.seeds) or x.shape[3] != self.D:
            raise ValueError(f"x: expected shape (S, B, T, D) with S = {len(self.seeds)}, "
                             f"D = {self.D}, got {tuple(x.shape)}")
        if y is not None:
            _tensor("y", y, 3, floating=False)
            if tuple(y.shape) != tuple(x.shape[:3]):
                raise ValueError(f"y: expected shape (S, B, T) = {tuple(x.shape[:3])} like x, "
                                 f"got {tuple(y.shape)}")

    def _feedback(self, fed: torch.Tensor) -> torch.Tensor:
        """W_yh e(fed) for fed (S, N) ids (-1: nothing fed) -> (S, N, H), by column look-up."""
        if fed.numel() and (fed.min() < -1 or fed.max() >= self.K):
            raise ValueError(f"fed: expected ids in 0..K-1 = 0..{self.K - 1} (or -1), got values "
                             f"from {int(fed.min())} to {int(fed.max())}")
        W = self.params["W_yh"].transpose(1, 2)  # (S, K, H): column k of W_yh is row k here
        W = torch.cat([W.new_zeros(W.shape[0], 1, W.shape[2]), W], dim=1)  # row 0: e(-1) = 0
        return W[torch.arange(W.shape[0])[:, None], fed + 1]

    def step_logits(self, x: torch.Tensor, fed: torch.Tensor) -> torch.Tensor:
        """o_t for x (S, N, D) and the fed previous symbols ``fed`` (S, N) (-1: none) -> (S, N, K).

        Steps are independent given what is fed, so N may hold any steps of any sequences.
        """
        p = self.params
        a = torch.baddbmm(p["b"][:, None, :], x, p["W_xh"].transpose(1, 2)) + self._feedback(fed)
        return torch.baddbmm(p["b_y"][:, None, :], torch.tanh(a), p["W_hy"].transpose(1, 2))

    def logits(self, x: torch.Tensor, fed: torch.Tensor) -> torch.Tensor:
        """o (S, B, T, K) when ``fed`` (S, B, T) holds the symbol fed in at each step."""
        S, B, T, D = x.shape
        return self.step_logits(x.reshape(S, B * T, D), fed.reshape(S, B * T)).reshape(S, B, T, self.K)

    def teacher_forced(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Logits (S, B, T, K) with the true y_{t-1} fed at every step, all steps at once."""
        self._check(x, y)
        return self.logits(x, shift_right(y))

    @torch.no_grad()
    def feed_own(self, x: torch.Tensor, y: torch.Tensor | None = None, *, own: float = 1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """The symbols fed in (S, B, T) when each step feeds, with probability ``own``, the
        model's own greedy output of the step before (else the true y_{t-1}; ``own = 1``: free
        running, no y needed). Step by step, without gradients (scheduled sampling's rule)."""
        self._check(x, y)
        own = _fraction("own", own)
        if own < 1.0 and y is None:
            raise ValueError("y: the true symbols are needed when own < 1")
        S, B, T, _ = x.shape
        fed = torch.full((S, B, T), -1, dtype=torch.long)
        p = self.params
        drive = torch.baddbmm(p["b"][:, None, :], x.reshape(S, B * T, -1),
                              p["W_xh"].transpose(1, 2)).reshape(S, B, T, self.H)
        W_hy_T = p["W_hy"].transpose(1, 2)
        for t in range(1, T):
            h = torch.tanh(drive[:, :, t - 1] + self._feedback(fed[:, :, t - 1]))
            guess = torch.bmm(h, W_hy_T).add_(p["b_y"][:, None, :]).argmax(-1)
            if own < 1.0:
                coin = torch.rand((S, B), generator=generator) < own
                guess = torch.where(coin, guess, y[:, :, t - 1])
            fed[:, :, t] = guess
        return fed

    def free_running(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (S, B, T, K) when every step is fed the model's own greedy output."""
        return self.logits(x, self.feed_own(x))


def shift_right(y: torch.Tensor) -> torch.Tensor:
    """y (..., T) -> the previous symbols (..., T): -1 (nothing) at t = 1, then y_1..y_{T-1}."""
    return torch.cat([torch.full_like(y[..., :1], -1), y[..., :-1]], dim=-1)


def step_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-step losses l_t = -log softmax(o_t)[y_t]: logits (..., K), targets (...) -> (...).

    A target of -1 (padding) gets the loss 0; :func:`masked_mean` then averages the real steps.
    """
    K = logits.shape[-1]
    flat = F.cross_entropy(logits.reshape(-1, K), targets.reshape(-1).clamp(min=0), reduction="none")
    return flat.reshape(targets.shape) * (targets >= 0).to(logits.dtype)


def per_step_gradients_sum(model: OutputFeedbackNet, x: torch.Tensor, y: torch.Tensor) -> dict:
    """Sum over t of the gradient of each step's own loss, each step computed in a graph of its
    own (step t alone, fed the true y_{t-1}); the loss is (1/T) sum_t mean over the batch of
    l_t, summed over the seeds. Returns {name: gradient} like the parameters."""
    model._check(x, y)
    T = x.shape[2]
    fed = shift_right(y)
    total = {name: torch.zeros_like(p) for name, p in model.params.items()}
    for t in range(T):
        logits = model.step_logits(x[:, :, t], fed[:, :, t])
        loss = step_cross_entropy(logits, y[:, :, t]).mean(-1).sum() / T
        grads = torch.autograd.grad(loss, list(model.params.values()))
        for name, g in zip(model.params, grads):
            total[name] += g
    return total


# --------------------------------------------------------------------------------------------
# data of the chapter's tasks


def sticky_chain(S: int, B: int, T: int, K: int, *, stay: float,
                 generators) -> torch.Tensor:
    """Symbols (S, B, T) of a Markov chain on 0..K-1: y_1 uniform; y_t = y_{t-1} with probability
    ``stay``, else one of the other K-1 symbols uniformly. Member s draws from generators[s]."""
    stay = _fraction("stay", stay)
    out = []
    for g in generators:
        first = torch.randint(0, K, (B, 1), generator=g)
        moves = torch.rand(B, T - 1, generator=g) >= stay
        jumps = torch.randint(1, K, (B, T - 1), generator=g) * moves
        out.append(torch.cat([first, first + jumps.cumsum(-1)], -1) % K)
    if len(out) != S:
        raise ValueError(f"generators: expected S = {S} generators, got {len(out)}")
    return torch.stack(out)


def noisy_observations(y: torch.Tensor, K: int, *, noise: float, generators,
                       dtype=torch.float64) -> torch.Tensor:
    """x_t = e(y_t) + noise * N(0, I), shape (S, B, T, K); member s draws from generators[s]."""
    noise = v.positive_float("noise", noise)
    eps = torch.stack([torch.randn(*y.shape[1:], K, generator=g, dtype=torch.float64)
                       for g in generators])
    return (one_hot(y, K, torch.float64) + noise * eps).to(dtype)


def observation_posterior(x: torch.Tensor, noise: float) -> torch.Tensor:
    """p(y_t | x_t) (..., K) for x from :func:`noisy_observations` (uniform prior): the best
    memoryless predictor, softmax(x_t / noise^2)."""
    return torch.softmax(x / noise**2, dim=-1)


def chain_filter(x: torch.Tensor, noise: float, stay: float) -> torch.Tensor:
    """p(y_t | x_1..x_t) (S, B, T, K), the forward (filtering) recursion of the hidden Markov
    model behind :func:`sticky_chain` and :func:`noisy_observations`: the best any causal
    predictor of y_t from the inputs can do."""
    K = x.shape[-1]
    A = torch.full((K, K), (1 - stay) / (K - 1), dtype=x.dtype)
    A.fill_diagonal_(stay)
    like = torch.exp(x / noise**2 - (x / noise**2).amax(-1, keepdim=True))
    belief = torch.full(x.shape[:-2] + (K,), 1.0 / K, dtype=x.dtype)
    out = []
    for t in range(x.shape[-2]):
        prior = belief if t == 0 else belief @ A
        belief = prior * like[..., t, :]
        belief = belief / belief.sum(-1, keepdim=True)
        out.append(belief)
    return torch.stack(out, dim=-2)


# --------------------------------------------------------------------------------------------
# training


@dataclasses.dataclass
class FeedbackRun:
    """What :func:`train_feedback` measured on fresh test data, one entry per seed (S,):
    ``forced_loss`` and ``free_loss`` (mean cross-entropy per step, teacher-forced and free
    running), ``forced_error`` and ``free_error`` (fraction of wrong greedy symbols)."""

    forced_loss: torch.Tensor
    free_loss: torch.Tensor
    forced_error: torch.Tensor
    free_error: torch.Tensor


def feedback_task(seeds, B: int, T: int, K: int, *, stay: float, noise: float, offset: int = 0):
    """(x (S, B, T, K), y (S, B, T)) for the noisy sticky chain, member s drawn from seed
    ``seeds[s] + offset`` (use different offsets for training and test data)."""
    gens = [torch.Generator().manual_seed(int(s) + offset) for s in seeds]
    y = sticky_chain(len(gens), B, T, K, stay=stay, generators=gens)
    return noisy_observations(y, K, noise=noise, generators=gens), y


def evaluate_feedback(model: OutputFeedbackNet, x: torch.Tensor, y: torch.Tensor) -> FeedbackRun:
    """Teacher-forced and free-running loss and error of every member on (x, y)."""
    with torch.no_grad():
        forced, free = model.teacher_forced(x, y), model.free_running(x)
        return FeedbackRun(
            step_cross_entropy(forced, y).mean((1, 2)), step_cross_entropy(free, y).mean((1, 2)),
            (forced.argmax(-1) != y).double().mean((1, 2)), (free.argmax(-1) != y).double().mean((1, 2)))


def train_feedback(model: OutputFeedbackNet, *, updates: int, B: int, T: int, stay: float,
                   noise: float, lr: float = 0.02, own_max: float = 0.0,
                   data_offset: int = 1_000) -> None:
    """Train every member with Adam on ``updates`` fresh batches of the noisy sticky chain.

    ``own_max = 0``: teacher forcing. ``own_max > 0``: scheduled sampling (Bengio et al., 2015):
    at update i each step feeds the model's own greedy previous output with probability
    own_max * i / updates (a linear ramp), the true symbol otherwise; no gradient flows
    through the choice. Member s's data and coins come from seed ``seeds[s] + data_offset``.
    """
    updates = v.integer("updates", updates, minimum=1)
    own_max = _fraction("own_max", own_max)
    x_all, y_all = feedback_task(model.seeds, updates * B, T, model.K, stay=stay, noise=noise,
                                 offset=data_offset)
    x_all = x_all.to(model.params["b"].dtype)
    coins = torch.Generator().manual_seed(int(model.seeds[0]) + data_offset + 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for i in range(updates):
        x, y = x_all[:, i * B:(i + 1) * B], y_all[:, i * B:(i + 1) * B]
        own = own_max * i / updates
        fed = model.feed_own(x, y, own=own, generator=coins) if own > 0 else shift_right(y)
        loss = step_cross_entropy(model.logits(x, fed), y).mean((1, 2)).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def train_steps(model, batches, *, lr: float = 0.02, loss_fn) -> list[float]:
    """Adam over ``batches`` (an iterable of argument tuples): each update minimises
    ``loss_fn(model, *batch)`` (a (S,) tensor of per-seed losses, summed so that the seeds
    train independently). Returns the mean loss of each update."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for batch in batches:
        loss = loss_fn(model, *batch)
        optimizer.zero_grad()
        loss.sum().backward()
        optimizer.step()
        history.append(float(loss.detach().mean()))
    return history


def variable_length_task(seeds, n: int, T: int, K: int, *, min_length: int = 1,
                         offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(symbols (S, n, T) with -1 at the padding, lengths (S, n)) from
    :func:`variable_length_batch`, member s drawn from seed ``seeds[s] + offset``."""
    drawn = [variable_length_batch(n, T, K, min_length=min_length,
                                   generator=torch.Generator().manual_seed(int(s) + offset))
             for s in _seeds(seeds)]
    return torch.stack([d[0] for d in drawn]), torch.stack([d[1] for d in drawn])


def gradient_map(logits_fn, x: torch.Tensor) -> torch.Tensor:
    """G[t, s] = ||d o_t / d x_s|| (Frobenius norm of a Q x D block) for one sequence.

    ``logits_fn`` maps x (1, 1, T, D) to o (1, 1, T, Q) (a one-seed model's ``logits``);
    ``x`` is (T, D). Returns G (T, T): row t is the output step, column s the input step.
    """
    x = _tensor("x", x, 2, floating=True)
    J = torch.autograd.functional.jacobian(lambda z: logits_fn(z[None, None])[0, 0], x)
    return J.pow(2).sum((1, 3)).sqrt()  # J is (T, Q, T, D)


@torch.no_grad()
def fed_symbol_trust(model: OutputFeedbackNet) -> torch.Tensor:
    """How much a feedback model believes the symbol fed in: the probability it gives to
    y_t = k when k is fed and the observation x_t = 0 is silent (equal evidence for every
    symbol), averaged over k. Returns (S,). For the sticky chain, the Bayes answer given the
    true y_{t-1} is the stay probability."""
    S, K = len(model.seeds), model.K
    x = torch.zeros(S, K, model.D, dtype=model.params["b"].dtype)
    fed = torch.arange(K).expand(S, K)
    probs = torch.softmax(model.step_logits(x, fed), dim=-1)
    return probs.diagonal(dim1=1, dim2=2).mean(-1)
