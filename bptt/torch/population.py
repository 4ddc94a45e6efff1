"""Many small tanh RNNs trained side by side, one per seed, with every gradient logged
(Exploding gradients and clipping, eq. `clipping-rescale`).

A claim about training behaviour needs several seeds, and a chapter has a CPU budget of
seconds. :class:`RNNPopulation` holds S independent networks of the course's step
equations, stacked along a leading member axis,

    a_t = W_xh x_t + W_hh h_{t-1} + b,   h_t = tanh(a_t),   o = W_hy h_T + b_y,

so that one batched forward and backward pass trains all of them at once. Member s owns its
parameters, its initialisation and its data stream (both drawn from ``seed[s]`` alone), so a
member's run does not depend on the other members: it is the run a single network with that
seed would make. :func:`train_adding` trains a population on the adding problem with plain
SGD, last-step MSE, and optional clipping by global norm per member,

    g <- g * min(1, kappa / ||g||)                       (eq. `clipping-rescale`),

and records, for every member and every update, the loss, the gradient norm of each
parameter group (recurrent W_hh, input W_xh, bias b, read-out W_hy and b_y), the global norm
before clipping, whether the clip fired and the fraction of saturated hidden units.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from bptt import _validate as v
from bptt import spectral, tasks

from .monitor import saturation_fraction

GROUPS = ("recurrent", "input", "bias", "readout")
"""The parameter groups whose gradient norms are logged: W_hh, W_xh, b, (W_hy, b_y)."""

SATURATION_LEVEL = 0.999
"""A hidden unit counts as saturated when |h| > 0.999 (its slope 1 - h^2 is below 0.002)."""


def _per_member(name: str, value, size: int, *, allow_inf: bool = False) -> np.ndarray:
    """A scalar or a (S,) sequence of positive numbers as a float array of shape (S,)."""
    array = np.asarray(value, dtype=float)
    if array.ndim == 0:
        array = np.full(size, float(array))
    if array.shape != (size,):
        raise ValueError(
            f"{name}: expected a number or a sequence of {size} numbers, got shape {array.shape}"
        )
    bad = ~(array > 0) | (np.isinf(array) & (not allow_inf)) | np.isnan(array)
    if bad.any():
        raise ValueError(
            f"{name}: expected positive {'numbers or inf' if allow_inf else 'finite numbers'}, "
            f"got {array.tolist()}"
        )
    return array


class RNNPopulation:
    """S independent tanh RNNs with a linear read-out of the last state.

    Parameters (torch tensors with ``requires_grad``, member axis first):
    ``W_xh`` (S, H, D), ``W_hh`` (S, H, H), ``b`` (S, H), ``W_hy`` (S, Q, H), ``b_y`` (S, Q).
    Member s starts from ``W_hh = gain * orthogonal`` (every singular value equals ``gain``),
    ``W_xh`` and ``W_hy`` uniform in (-1/sqrt(H), 1/sqrt(H)), zero biases, all drawn from
    ``numpy.random.default_rng(seeds[s])``.
    """

    def __init__(
        self,
        seeds,
        *,
        D: int,
        H: int,
        Q: int = 1,
        gain: float = 1.0,
        dtype: torch.dtype = torch.float32,
    ):
        seeds = [v.integer("seeds[i]", s, minimum=0) for s in seeds]
        if not seeds:
            raise ValueError("seeds: expected at least one seed, got none")
        self.D = v.integer("D", D, minimum=1)
        self.H = v.integer("H", H, minimum=1)
        self.Q = v.integer("Q", Q, minimum=1)
        gain = v.positive_float("gain", gain)
        self.seeds = tuple(seeds)
        bound = 1.0 / math.sqrt(H)
        blocks = {name: [] for name in ("W_xh", "W_hh", "b", "W_hy", "b_y")}
        for seed in seeds:
            rng = np.random.default_rng(seed)
            blocks["W_hh"].append(spectral.orthogonal(H, rng=rng, gain=gain))
            blocks["W_xh"].append(rng.uniform(-bound, bound, (H, D)))
            blocks["W_hy"].append(rng.uniform(-bound, bound, (Q, H)))
            blocks["b"].append(np.zeros(H))
            blocks["b_y"].append(np.zeros(Q))
        self.params = {
            name: torch.tensor(np.stack(arrays), dtype=dtype).requires_grad_(True)
            for name, arrays in blocks.items()
        }

    @property
    def size(self) -> int:
        """S, the number of members."""
        return len(self.seeds)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (S, B, T, D) -> (o (S, B, Q) from the last state, h (S, B, T, H))."""
        p = self.params
        if x.dim() != 4 or x.shape[0] != self.size or x.shape[3] != self.D:
            raise ValueError(
                f"x: expected shape (S, B, T, D) with S = {self.size}, "
                f"D = {self.D}, got {tuple(x.shape)}"
            )
        x_proj = torch.einsum("sbtd,shd->sbth", x, p["W_xh"]) + p["b"][:, None, None, :]
        h = x.new_zeros(x.shape[0], x.shape[1], self.H)
        W_hh_T = p["W_hh"].transpose(1, 2)
        states = []
        for x_t in x_proj.unbind(dim=2):
            h = torch.tanh(torch.baddbmm(x_t, h, W_hh_T))
            states.append(h)
        o = torch.baddbmm(p["b_y"][:, None, :], h, p["W_hy"].transpose(1, 2))
        return o, torch.stack(states, dim=2)

    def group_grad_norms(self) -> dict[str, np.ndarray]:
        """{group: (S,) gradient norm of each member} for the groups of :data:`GROUPS`."""
        p = self.params

        def norm(*names):
            squares = sum(p[n].grad.detach().double().flatten(1).pow(2).sum(1) for n in names)
            return squares.sqrt().numpy()

        return {
            "recurrent": norm("W_hh"),
            "input": norm("W_xh"),
            "bias": norm("b"),
            "readout": norm("W_hy", "b_y"),
        }


@dataclasses.dataclass
class PopulationRun:
    """What :func:`train_adding` recorded; arrays have one row per member (S, ...).

    loss (S, U): training MSE of each update; grad_norm (S, U): global norm before clipping;
    group_norms: {group: (S, U)} per-parameter-group norms before clipping; clipped (S, U)
    bool; saturation (S, U): fraction of |h_t| entries above :data:`SATURATION_LEVEL` in the
    update's forward pass; readout_curvature (S, U): the largest eigenvalue of the loss's
    Hessian in the read-out (:func:`readout_curvature`); diverged_at (S,): the 1-based update whose loss or gradient was
    NaN/Inf (that member is frozen from then on), 0 if never; test_mse (S,): MSE on the fixed
    test set after training (inf for a diverged member); eval_updates (E,) and eval_mse (S, E):
    test MSE every ``eval_every`` updates; seeds, lr, clip_norm: the settings (S,) each.
    """

    seeds: tuple[int, ...]
    lr: np.ndarray
    clip_norm: np.ndarray
    loss: np.ndarray
    grad_norm: np.ndarray
    group_norms: dict[str, np.ndarray]
    clipped: np.ndarray
    saturation: np.ndarray
    readout_curvature: np.ndarray
    diverged_at: np.ndarray
    test_mse: np.ndarray
    eval_updates: np.ndarray
    eval_mse: np.ndarray

    def member(self, s: int) -> dict:
        """Member s's traces as a dict of 1-D arrays (its updates up to a divergence)."""
        n = int(self.diverged_at[s]) or self.loss.shape[1]
        trace = {
            "loss": self.loss[s, :n],
            "grad_norm": self.grad_norm[s, :n],
            "clipped": self.clipped[s, :n],
            "saturation": self.saturation[s, :n],
            "readout_curvature": self.readout_curvature[s, :n],
        }
        trace.update({g: self.group_norms[g][s, :n] for g in GROUPS})
        return trace


def readout_curvature(h_T: torch.Tensor) -> np.ndarray:
    """lambda_max of the Hessian of the last-step MSE in the read-out (W_hy, b_y), per member.

    ``h_T`` (S, B, H) the last hidden states. With h~ = (h_T, 1) the MSE is quadratic in the
    read-out, with Hessian (2/B) sum_b h~_b h~_b^T; an SGD step on the read-out alone is
    stable only while lr * lambda_max < 2. Saturated units (|h| = 1) make lambda_max about
    2 (H + 1). Returns (S,) float64 (NaN for a member whose states are not finite).
    """
    h = h_T.detach().double()
    h = torch.cat([h, h.new_ones(*h.shape[:2], 1)], dim=2)
    gram = 2.0 * h.transpose(1, 2) @ h / h.shape[1]
    finite = torch.isfinite(gram).flatten(1).all(dim=1)
    values = torch.full((h.shape[0],), float("nan"), dtype=torch.float64)
    if finite.any():
        values[finite] = torch.linalg.eigvalsh(gram[finite])[:, -1]
    return values.numpy()


def _adding_batches(rngs, B: int, T: int, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*(tasks.adding_problem(B, T, seed=rng) for rng in rngs))
    return torch.tensor(np.stack(xs), dtype=dtype), torch.tensor(np.stack(ys), dtype=dtype)


def train_adding(
    seeds,
    *,
    T: int,
    H: int,
    B: int,
    updates: int,
    lr,
    clip_norm=math.inf,
    gain: float = 1.0,
    test_size: int = 500,
    test_seed: int = 10_000,
    eval_every: int = 0,
    dtype: torch.dtype = torch.float32,
) -> PopulationRun:
    """Train one tanh RNN per seed on the adding problem of length T with SGD.

    Parameters
    ----------
    seeds : S non-negative ints; seed s draws member s's initial weights, then its batches.
    T, H, B : sequence length, hidden size, batch size of each update.
    updates : U, the number of SGD updates (one fresh batch each).
    lr : the learning rate eta, a number or (S,) numbers (one per member).
    clip_norm : kappa of eq. `clipping-rescale`, a number or (S,) numbers; ``inf`` = no clipping.
    gain : every singular value of the initial W_hh.
    test_size, test_seed : the fixed test set (the same for every member).
    eval_every : also measure the test MSE every this many updates (0: only at the end).

    Returns a :class:`PopulationRun`. The loss is the last-step MSE, mean over the batch.
    """
    T = v.integer("T", T, minimum=2)
    B = v.integer("B", B, minimum=1)
    U = v.integer("updates", updates, minimum=1)
    eval_every = v.integer("eval_every", eval_every, minimum=0)
    population = RNNPopulation(seeds, D=2, H=H, gain=gain, dtype=dtype)
    S = population.size
    lr = _per_member("lr", lr, S)
    kappa = _per_member("clip_norm", clip_norm, S, allow_inf=True)
    rngs = [np.random.default_rng([seed, 1]) for seed in population.seeds]
    x_test, y_test = tasks.adding_problem(test_size, T, seed=test_seed)
    x_test = torch.tensor(np.broadcast_to(x_test, (S, *x_test.shape)).copy(), dtype=dtype)
    y_test = torch.tensor(y_test, dtype=dtype)

    loss = np.full((S, U), np.nan)
    total = np.full((S, U), np.nan)
    groups = {g: np.full((S, U), np.nan) for g in GROUPS}
    clipped = np.zeros((S, U), dtype=bool)
    saturation = np.full((S, U), np.nan)
    curvature = np.full((S, U), np.nan)
    diverged_at = np.zeros(S, dtype=int)
    alive = np.ones(S, dtype=bool)
    eval_updates, eval_mse = [], []
    lr_t = torch.tensor(lr, dtype=dtype)

    def test_mse() -> np.ndarray:
        with torch.no_grad():
            o, _ = population.forward(x_test)
            mse = ((o - y_test) ** 2).mean(dim=(1, 2)).double().numpy()
        return np.where(alive & np.isfinite(mse), mse, np.inf)

    params = list(population.params.values())
    for u in range(U):
        x, y = _adding_batches(rngs, B, T, dtype)
        o, h = population.forward(x)
        member_loss = ((o - y) ** 2).mean(dim=(1, 2))  # (S,)
        for p in params:
            p.grad = None
        member_loss.sum().backward()  # members are independent: each gets its own gradient
        norms = population.group_grad_norms()
        g_norm = np.sqrt(sum(n**2 for n in norms.values()))
        l_value = member_loss.detach().double().numpy()
        finite = np.isfinite(l_value) & np.isfinite(g_norm)
        newly = alive & ~finite
        diverged_at[newly] = u + 1
        alive &= finite
        loss[:, u], total[:, u] = l_value, g_norm
        for g in GROUPS:
            groups[g][:, u] = norms[g]
        saturation[:, u] = saturation_fraction(h, SATURATION_LEVEL, dim=(1, 2, 3)).numpy()
        curvature[:, u] = readout_curvature(h[:, :, -1])
        fire = alive & (g_norm > kappa)
        clipped[:, u] = fire
        scale = np.where(fire, kappa / np.where(fire, g_norm, 1.0), 1.0) * alive
        step = torch.tensor(scale, dtype=dtype) * lr_t  # 0 for a frozen member
        with torch.no_grad():
            for p in params:
                grad = torch.nan_to_num(p.grad, nan=0.0, posinf=0.0, neginf=0.0)
                p -= step.view(-1, *([1] * (p.dim() - 1))) * grad
        if eval_every and (u + 1) % eval_every == 0:
            eval_updates.append(u + 1)
            eval_mse.append(test_mse())

    return PopulationRun(
        seeds=population.seeds,
        lr=lr,
        clip_norm=kappa,
        loss=loss,
        grad_norm=total,
        group_norms=groups,
        clipped=clipped,
        saturation=saturation,
        readout_curvature=curvature,
        diverged_at=diverged_at,
        test_mse=test_mse(),
        eval_updates=np.array(eval_updates, dtype=int),
        eval_mse=np.array(eval_mse).T if eval_mse else np.zeros((S, 0)),
    )
