"""Checks of exercise 7: eigenvalues, powers of a matrix, and the decay of gradients ("Eigenvalues and the power of W").

The learner writes

- ``power_by_eig(M, k)`` -> M^k (n, n) for a symmetric M (n, n), from its eigendecomposition
  M = Q diag(lambda) Q^T, so M^k = Q diag(lambda^k) Q^T;
- ``power_iteration(M, v0, num_iters)`` -> ``(lam, v)``: the dominant eigenvalue (largest in
  magnitude) of a symmetric M and its unit eigenvector (n,);
- ``decay_rate(W)`` -> the factor by which ||(W^T)^k g|| changes per step for large k (the
  spectral radius, by Gelfand's formula): below 1 gradients vanish, above 1 they explode;
- ``answers()`` with q1, q2 (numbers) and q3 (a choice).

Expected values come independently of the formulas asked for: ``numpy.linalg.matrix_power``
for M^k, ``numpy.linalg.eigh`` for the dominant eigenpair, and for the decay rate a *measured*
per-step growth of ||(W^T)^k g|| over many steps. numpy only: no torch needed.
"""

from __future__ import annotations

import numpy as np

from ..hints import array_value, compare, scalar_value
from ..parts import Exercise, Part, Verdict
from ..questions import choice_question, number_question
from ._support import pair, rng_for

POWERS = (0, 1, 2, 7)
NUM_ITERS = 200
DECAY_RTOL = 1e-2


def _symmetric(rng: np.random.Generator, eigenvalues) -> np.ndarray:
    Q, _ = np.linalg.qr(rng.normal(size=(len(eigenvalues), len(eigenvalues))))
    return Q @ np.diag(eigenvalues) @ Q.T


# ----------------------------------------------------------------------------- power_by_eig


def _power_inputs(seed: int) -> np.ndarray:
    rng = rng_for(seed, "ex07.power")
    return _symmetric(rng, [-1.3, -0.4, 0.6, 0.9, 1.2] * rng.uniform(0.8, 1.1, 5))


def _collect_power(functions, M):
    return {f"M^{k}": functions["power_by_eig"](M.copy(), k) for k in POWERS}


def _power_hint(M: np.ndarray, k: int, values) -> str | None:
    lam, Q = np.linalg.eigh(M)
    variants = [
        (
            Q.T @ np.diag(lam**k) @ Q,
            "the eigenvectors are the columns of Q: M^k = Q diag(lambda^k) Q^T",
        ),
        (
            Q @ np.diag(k * lam) @ Q.T,
            "raise the eigenvalues to the power k (lambda**k), do not multiply by k",
        ),
    ]
    return compare(
        f"M^{k}", array_value(values, f"M^{k}"), np.linalg.matrix_power(M, k), variants=variants
    )


def _score_power(M, values):
    return Verdict.from_hints([_power_hint(M, k, values) for k in POWERS])


# ----------------------------------------------------------------------------- power_iteration


def _iteration_inputs(seed: int) -> list[dict]:
    rng = rng_for(seed, "ex07.iteration")
    spectra = ([4.0, 2.0, -1.5, 1.0, 0.5], [-4.0, 2.5, 1.0, -1.0, 0.3])
    return [{"M": _symmetric(rng, s), "v0": rng.normal(size=len(s))} for s in spectra]


def _sign(case: dict) -> str:
    lam = np.linalg.eigvalsh(case["M"])
    return "positive" if lam[np.argmax(np.abs(lam))] > 0 else "negative"


def _collect_iteration(functions, cases):
    values = {}
    for case in cases:
        result = functions["power_iteration"](case["M"].copy(), case["v0"].copy(), NUM_ITERS)
        lam, v = pair(result, "power_iteration", "(lam, v)")
        values[f"lam ({_sign(case)})"], values[f"v ({_sign(case)})"] = lam, v
    return values


def _vector_hint(v: np.ndarray, dominant: np.ndarray) -> str | None:
    if v.shape != dominant.shape:
        return f"v: shape {v.shape}, expected {dominant.shape}"
    if not np.all(np.isfinite(v)):
        return "v: contains NaN or inf"
    if abs(np.linalg.norm(v) - 1) > 1e-6:
        return "v: should have unit norm (normalise it at every step)"
    if abs(abs(v @ dominant) - 1) > 1e-6:
        return "v: not the dominant eigenvector (the one of the largest |lambda|)"
    return None


def _iteration_hints(case: dict, values) -> list[str | None]:
    lam, Q = np.linalg.eigh(case["M"])
    top = int(np.argmax(np.abs(lam)))
    magnitude = "||M v|| gives |lambda|; for a negative eigenvalue use v^T M v"
    lam_got = scalar_value(values, f"lam ({_sign(case)})", "lam")
    return [
        _vector_hint(array_value(values, f"v ({_sign(case)})"), Q[:, top]),
        compare("lam", lam_got, lam[top], variants=[(abs(lam[top]), magnitude)]),
    ]


def _score_iteration(cases, values):
    return Verdict.from_cases(
        (f"with a {_sign(c)} dominant eigenvalue", _iteration_hints(c, values)) for c in cases
    )


# ----------------------------------------------------------------------------- decay_rate


def _decay_inputs(seed: int) -> list[np.ndarray]:
    rng = rng_for(seed, "ex07.decay")
    symmetric = _symmetric(rng, [-0.95, 0.6, 0.3, -0.2])
    non_normal = np.array([[0.6, 3.0, 0.0], [0.0, 0.5, 3.0], [0.0, 0.0, 0.4]])
    theta = rng.uniform(0.3, 1.2)
    rotation = 1.1 * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    block = np.zeros((4, 4))
    block[:2, :2], block[2, 2], block[3, 3] = rotation, 0.5, -0.3
    P = np.eye(4) + 0.3 * rng.normal(size=(4, 4))
    return [symmetric, non_normal, P @ block @ np.linalg.inv(P)]


DECAY_CASES = ("a symmetric W", "a non-normal W", "a W with complex eigenvalues")


def _collect_decay(functions, matrices):
    return {
        f"decay_rate(W) for {name}": functions["decay_rate"](W.copy())
        for name, W in zip(DECAY_CASES, matrices)
    }


def measured_rate(W: np.ndarray, steps: int = 600, window: int = 400) -> float:
    """The per-step growth of ||(W^T)^k g||, measured: geometric mean over the last ``window`` steps."""
    g = np.ones(W.shape[0]) + np.arange(W.shape[0]) / W.shape[0]
    logs = []
    for _ in range(steps):
        g = W.T @ g
        norm = np.linalg.norm(g)
        logs.append(np.log(norm))
        g = g / norm
    return float(np.exp(np.mean(logs[-window:])))


def _decay_hint(name: str, W: np.ndarray, values) -> str | None:
    key = f"decay_rate(W) for {name}"
    variants = [
        (
            np.max(np.linalg.eigvals(W).real),
            "the eigenvalue of largest magnitude (abs) sets the rate, not the largest",
        ),
        (
            np.linalg.norm(W, 2),
            "the largest singular value only bounds the rate; for large k it is |lambda|_max",
        ),
    ]
    return compare(
        key, scalar_value(values, key, key), measured_rate(W), rtol=DECAY_RTOL, variants=variants
    )


def _score_decay(matrices, values):
    return Verdict.from_cases(
        ("", [_decay_hint(n, W, values)]) for n, W in zip(DECAY_CASES, matrices)
    )


# ----------------------------------------------------------------------------- questions

Q1_EIGENVALUES, Q1_POWER = (0.5, -1.2, 0.9), 3
Q2_RADIUS, Q2_FACTOR = 0.9, 1e-3
Q3_MATRIX = ((0.5, 4.0), (0.0, 0.5))


def _q1_radius_of_power() -> float:
    M = np.linalg.matrix_power(np.diag(Q1_EIGENVALUES), Q1_POWER)
    return float(np.max(np.abs(np.linalg.eigvals(M))))


def _q2_steps_to_shrink() -> int:
    """The first k with radius^k <= factor, counted."""
    k, norm = 0, 1.0
    while norm > Q2_FACTOR:
        k, norm = k + 1, norm * Q2_RADIUS
    return k


def _q3_long_run() -> str:
    """a: explodes, b: vanishes, c: neither; decided by 200 steps of (W^T)^k g."""
    g0 = np.ones(2)
    g = np.linalg.matrix_power(np.array(Q3_MATRIX).T, 200) @ g0
    ratio = np.linalg.norm(g) / np.linalg.norm(g0)
    return "a" if ratio > 1e3 else "b" if ratio < 1e-3 else "c"


EXERCISE = Exercise(
    "ex07",
    "Eigenvalues, powers of W and the decay of gradients",
    (
        Part("power_by_eig", 2, ("power_by_eig",), _power_inputs, _collect_power, _score_power),
        Part(
            "power_iteration",
            3,
            ("power_iteration",),
            _iteration_inputs,
            _collect_iteration,
            _score_iteration,
        ),
        Part("decay_rate", 3, ("decay_rate",), _decay_inputs, _collect_decay, _score_decay),
        number_question("q1", _q1_radius_of_power, rtol=1e-3),
        number_question("q2", _q2_steps_to_shrink, rtol=0.0, atol=0.5),
        choice_question("ex07", "q3", "abc", compute=_q3_long_run),
    ),
)

# Library functions each part asks the learner to write: tripwires in the batch grader.
EXERCISE = EXERCISE.forbidding(
    {
        "power_by_eig": ("numpy.linalg.matrix_power",),
        "power_iteration": ("bptt.spectral.power_iteration",),
        "decay_rate": (
            "bptt.spectral.spectral_radius",
            "bptt.spectral.vanishing_bound",
        ),
    }
)
