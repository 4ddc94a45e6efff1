"""Checks of exercise 18: a character-model challenge on the capstone's corpus ("Capstone: a
character-level language model").

The corpus is the capstone's: the first 300,000 characters of ``bptt.tasks.char_corpus``
(seed 0), 90 % for training; the held-out text is its validation part, cut into 8 contiguous
streams as ``bptt.torch.batchify`` cuts it. The learner writes

- ``train(seed)`` -> ``predict``: trains a recurrent model with truncated BPTT, choosing the
  truncation length K, the clipping threshold and the rest (the seed is for the learner's own
  generators); ``predict(streams)`` maps an int array (S, N) of character ids to the natural-log
  probabilities (S, N, V) (or (S, N - 1, V)) of the next character after each prefix, every
  stream read from its first character on;
- ``answers()`` with q1, the mean number of steps the gradient of a loss reaches back in
  TBPTT(35, 35), and q2, how many times fewer updates TBPTT(100, 100) makes over the same text.

The grader calls ``train`` itself on one thread, measuring its CPU time against the budget, runs
``predict`` on the held-out streams and keeps, at every position, the log-probability of the
character that really comes next and the log of the sum of all V probabilities (which must be
0). It scores the validation bits per character in its own process against the opponents of the
capstone, fitted here on the same training text and scored on the same streams: full marks below
the interpolated Kneser-Ney 4-gram (about 2.40 bpc), half marks below the trigram (about 2.96).
The best n-gram of the capstone, the 5-gram (about 2.15), is not the target: the capstone's own
LSTM, with about three times this budget, passes it on 8 of 10 seeds by more than 0.01 bits, and
this exercise's solution stays above it. Measured for the
solution (an LSTM with H = 128, 32 streams, K = 35, clipping at 1, 2000 updates, about 14 s of
CPU on the course machine), on seeds 0..4: 2.294, 2.317, 2.316, 2.292, 2.315 bpc; K = 100 with
700 updates in the same time: 2.395, 2.381 (seeds 0, 1); K = 10 with 5000 updates: 2.281, 2.314.

The CPU budget is measured where the learner's code runs, so a determined cheat could fool it;
the batch grader's own limits on the whole child process still hold.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ..errors import WrongOutput
from ..hints import array_value, scalar_value
from ..parts import Exercise, Part, Verdict
from ..questions import number_question
from ._support import derived_seed, single_threaded, trained_predictor

MAX_CHARS = 300_000
VALID_STREAMS = 8
CPU_BUDGET_S = 30.0
"""CPU seconds ``train`` may use (on one thread); read when scoring."""
TIME_LIMIT_S = 240.0
"""Wall-clock seconds for training and predicting, a hard stop well above the budget."""
NORMALISATION_TOLERANCE = 1e-3
FULL_MARKS_ORDER, HALF_MARKS_ORDER = 4, 3
CPU_KEY = "the CPU time of train (s)"
TARGET_KEY = "the log-probabilities of the next characters"
NORM_KEY = "the log of the summed probabilities"


def _held_out(seed: int) -> dict:
    """The held-out streams (VALID_STREAMS, N) and the seed for the learner's train."""
    from ...tasks import char_corpus

    valid = char_corpus(max_chars=MAX_CHARS, seed=0).valid
    N = len(valid) // VALID_STREAMS
    streams = valid[: VALID_STREAMS * N].reshape(VALID_STREAMS, N)
    return {"seed": derived_seed(seed, "ex18.train"), "streams": streams}


def _as_array(value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, on any device
        value = value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=float)


def _collect(functions, inputs):
    streams = inputs["streams"]
    S, N = streams.shape
    predict, cpu = trained_predictor(functions, inputs["seed"], "streams")
    with single_threaded():
        log_probs = _as_array(predict(streams.copy()))
    if log_probs.ndim != 3 or log_probs.shape[:2] not in ((S, N), (S, N - 1)):
        raise WrongOutput(
            f"predict(streams) for streams of shape ({S}, {N}) returned shape {log_probs.shape}, "
            f"expected ({S}, {N}, V): a distribution over the V characters after every prefix"
        )
    used = log_probs[:, : N - 1]
    if used.shape[2] <= streams.max():
        raise WrongOutput(
            f"predict(streams): {used.shape[2]} scores per position, but the ids go up to "
            f"{streams.max()}: one log-probability per character of the vocabulary"
        )
    targets = np.take_along_axis(used, streams[:, 1:, None], axis=2)[..., 0]
    peak = used.max(axis=2, keepdims=True)
    norms = np.log(np.exp(used - peak).sum(axis=2)) + peak[..., 0]
    return {
        CPU_KEY: cpu,
        TARGET_KEY: targets,
        NORM_KEY: norms,
    }


@functools.lru_cache(maxsize=1)
def opponents() -> dict[int, float]:
    """Validation bpc of the Kneser-Ney n-grams the challenge is scored against, by order."""
    from ...ngram import fit
    from ...tasks import char_corpus

    corpus = char_corpus(max_chars=MAX_CHARS, seed=0)
    streams = _held_out(0)["streams"]
    V = len(corpus.vocab)
    return {
        n: fit(corpus.train, V, n).bits_per_char(streams)
        for n in (HALF_MARKS_ORDER, FULL_MARKS_ORDER)
    }


def _score(inputs, values):
    cpu = scalar_value(values, CPU_KEY, "the CPU time")
    if cpu > CPU_BUDGET_S:
        return Verdict.wrong(
            f"train used {cpu:.0f} s of CPU time, over the budget of {CPU_BUDGET_S:g} s: "
            "train a smaller model, or for fewer updates"
        )
    targets, norms = array_value(values, TARGET_KEY), array_value(values, NORM_KEY)
    if not (np.all(np.isfinite(targets)) and np.all(np.isfinite(norms))):
        return Verdict.wrong("predict(streams): contains NaN or inf")
    off = float(np.max(np.abs(norms)))
    if off > NORMALISATION_TOLERANCE:
        return Verdict.wrong(
            f"predict(streams): the probabilities at a position sum to exp({off:.3g}), not 1: "
            "return natural-log probabilities, torch.log_softmax(logits, dim=-1), not logits "
            "or probabilities"
        )
    bpc = float(-np.mean(targets) / math.log(2))
    bars = opponents()
    full, half = bars[FULL_MARKS_ORDER], bars[HALF_MARKS_ORDER]
    message = f"validation {bpc:.3f} bits per character"
    if bpc < full:
        return Verdict.correct()
    if bpc < half:
        return Verdict(
            0.5,
            f"{message}: below the trigram's {half:.3f}, but full marks need less than the "
            f"4-gram's {full:.3f} (more updates within the budget, a better K or learning rate)",
        )
    return Verdict.wrong(f"{message}: points start below the trigram's {half:.3f}")


# ----------------------------------------------------------------------------- questions

Q1_K = 35


def _q1_mean_reach() -> float:
    """Mean over the losses of TBPTT(35, 35) of the steps its gradient is backpropagated
    through, counted from the package's schedule of the updates."""
    from ...torch.tbptt import tbptt_schedule

    reach = [
        end - update.window_start
        for update in tbptt_schedule(4 * Q1_K, Q1_K, Q1_K)
        for end in range(update.loss_start + 1, update.end + 1)
    ]
    return float(np.mean(reach))


Q2_LONG, Q2_STEPS = 100, 3500


def _q2_fewer_updates() -> float:
    """How many times fewer updates TBPTT(100, 100) makes than TBPTT(35, 35) over the same steps."""
    from ...torch.tbptt import tbptt_schedule

    short = tbptt_schedule(Q2_STEPS, Q1_K, Q1_K)
    return len(short) / len(tbptt_schedule(Q2_STEPS, Q2_LONG, Q2_LONG))


EXERCISE = Exercise(
    "ex18",
    "The character-model challenge",
    (
        Part("challenge", 6, ("train",), _held_out, _collect, _score, time_limit=TIME_LIMIT_S),
        number_question("q1", _q1_mean_reach, rtol=1e-3),
        number_question("q2", _q2_fewer_updates, rtol=1e-2),
    ),
    kinds=("measure",),
)
