"""Checks of exercise 9: a training challenge on the adding problem ("Gated architectures").

The adding problem of length T = 40: x (N, T, 2), the first channel uniform on [0, 1], the
second marking one step in each half; the target is the sum of the two marked values. Always
predicting 1 scores the baseline MSE Var(U_1 + U_2) = 1/6. The learner writes

- ``train(seed)`` -> ``predict``: trains a model (the seed is for the learner's own
  generators) and returns a function ``predict(x)`` mapping a numpy array (N, T, 2) to N
  predictions, shape (N,) or (N, 1);
- ``answers()`` with q1 (the baseline MSE) and q2 (the best MSE without the second marked
  value).

The grader calls ``train`` itself on one thread, measuring its CPU time against the budget,
then passes held-out inputs that it draws from its own generator (never the learner's) to
``predict`` and scores the mean squared error in its own process: full marks below a tenth of
the baseline, half marks below 0.6 of it. The targets come straight from the inputs (the sum of
the marked values); no learner code sees them.

The CPU budget is measured where the learner's code runs, so a determined cheat could fool it;
the batch grader's own wall-clock and CPU-time limits on the whole child process still hold.
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import WrongOutput, a_type
from ..hints import array_value, scalar_value
from ..parts import Exercise, Part, Verdict
from ..questions import number_question
from ._support import derived_seed, rng_for, single_threaded

T = 40
HELD_OUT = 1000
BASELINE_MSE = 2 / 12  # Var(U_1 + U_2) for independent U ~ U[0, 1]
FULL_MARKS_MSE = 0.1 * BASELINE_MSE
HALF_MARKS_MSE = 0.6 * BASELINE_MSE
CPU_BUDGET_S = 30.0
"""CPU seconds ``train`` may use (on one thread); read when scoring."""
TIME_LIMIT_S = 180.0
"""Wall-clock seconds for training and predicting, a hard stop well above the budget."""
CPU_KEY = "the CPU time of train (s)"
PREDICTIONS_KEY = "the held-out predictions"


def _held_out(seed: int) -> dict:
    """Held-out inputs (HELD_OUT, T, 2) from the grader's own generator, and the train seed."""
    rng = rng_for(seed, "ex09.held_out")
    values = rng.uniform(0.0, 1.0, (HELD_OUT, T))
    markers = np.zeros((HELD_OUT, T))
    rows = np.arange(HELD_OUT)
    markers[rows, rng.integers(0, T // 2, HELD_OUT)] = 1.0
    markers[rows, rng.integers(T // 2, T, HELD_OUT)] = 1.0
    return {"seed": derived_seed(seed, "ex09.train"), "x": np.stack([values, markers], axis=-1)}


def _collect(functions, inputs):
    with single_threaded():
        start = time.process_time()
        predict = functions["train"](inputs["seed"])
        cpu = time.process_time() - start
        if not callable(predict):
            raise WrongOutput(
                f"train(seed): should return a function predict(x), got {a_type(predict)}"
            )
        predictions = predict(inputs["x"].copy())
    return {CPU_KEY: cpu, PREDICTIONS_KEY: predictions}


def _score(inputs, values):
    cpu = scalar_value(values, CPU_KEY, "the CPU time")
    if cpu > CPU_BUDGET_S:
        return Verdict.wrong(
            f"train used {cpu:.0f} s of CPU time, over the budget of {CPU_BUDGET_S:g} s: "
            "train a smaller model, for fewer steps"
        )
    predictions = array_value(values, PREDICTIONS_KEY)
    if predictions.shape not in ((HELD_OUT,), (HELD_OUT, 1)):
        return Verdict.wrong(
            f"predict(x) for x of shape ({HELD_OUT}, {T}, 2) returned shape {predictions.shape}, "
            f"expected ({HELD_OUT},) or ({HELD_OUT}, 1): one prediction per sequence"
        )
    if not np.all(np.isfinite(predictions)):
        return Verdict.wrong("the predictions: contain NaN or inf")
    x = inputs["x"]
    targets = np.sum(x[..., 0] * x[..., 1], axis=1)
    mse = float(np.mean((predictions.reshape(-1) - targets) ** 2))
    if mse <= FULL_MARKS_MSE:
        return Verdict.correct()
    message = (
        f"held-out MSE {mse:.3f} against the baseline {BASELINE_MSE:.3f} of always predicting 1"
    )
    if mse <= HALF_MARKS_MSE:
        return Verdict(
            0.5,
            f"{message}: better, but full marks need an MSE below {FULL_MARKS_MSE:.4f} "
            "(train longer, or try a gated cell)",
        )
    return Verdict.wrong(f"{message}: points start below {HALF_MARKS_MSE:.3f}")


# ----------------------------------------------------------------------------- questions

GRID = 2000


def _grid() -> tuple[np.ndarray, np.ndarray]:
    """Midpoints of a GRID x GRID grid on [0, 1]^2: (U_1, U_2) for exact-enough expectations."""
    u = (np.arange(GRID) + 0.5) / GRID
    return np.meshgrid(u, u, indexing="ij")


def _q1_baseline() -> float:
    """E[(U_1 + U_2 - 1)^2] by integration on a grid."""
    u1, u2 = _grid()
    return float(np.mean((u1 + u2 - 1.0) ** 2))


def _q2_first_value_only() -> float:
    """The least MSE of a predictor that knows U_1 only: U_1 + c with the best c (= E[U_2])."""
    u1, u2 = _grid()
    best = float(np.mean(u2))
    return float(np.mean((u1 + u2 - (u1 + best)) ** 2))


EXERCISE = Exercise(
    "ex09",
    "The adding-problem challenge",
    (
        Part("challenge", 6, ("train",), _held_out, _collect, _score, time_limit=TIME_LIMIT_S),
        number_question("q1", _q1_baseline, rtol=1e-2),
        number_question("q2", _q2_first_value_only, rtol=1e-2),
    ),
    kinds=("measure",),
)
