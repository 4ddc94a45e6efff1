"""Claims of the language-model chapters (BPTT in PyTorch; Capstone: a character-level language
model): a recurrent model beats the count-based n-gram models on the same validation text.

The opponent of a language model is counting: an interpolated n-gram model
(:mod:`bptt.ngram`) fitted on the same training ids and scored on the same validation
targets. A claim that the recurrent model has *learned* something is only as strong as its
margin over the best count model that lacks what the claim is about (context beyond the last
character for the bigram, beyond the last four for the 5-gram).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BaselineMargin:
    """A model's validation bits per character against the best of several baselines."""

    model_bpc: float
    best_name: str
    best_bpc: float
    margin: float  # required margin in bits per character
    holds: bool

    @property
    def gap(self) -> float:
        """How far below the best baseline the model is (bits per character; > 0 is better)."""
        return self.best_bpc - self.model_bpc


def beats_best_baseline(model_bpc: float, baselines: dict, *, margin: float = 0.0) -> BaselineMargin:
    """Does ``model_bpc`` lie more than ``margin`` bits per character below every baseline?

    ``baselines`` maps a name (an n-gram order, say) to the baseline's validation bits per
    character on the same targets. The claim holds when model_bpc < min(baselines) - margin.
    """
    if not baselines:
        raise ValueError("baselines: expected at least one baseline, got none")
    values = {name: float(bpc) for name, bpc in baselines.items()}
    if not all(math.isfinite(x) for x in [*values.values(), float(model_bpc)]):
        raise ValueError(f"model_bpc, baselines: expected finite numbers, got {model_bpc}, {values}")
    if margin < 0:
        raise ValueError(f"margin: expected a number >= 0, got {margin}")
    best_name = min(values, key=values.get)
    best = values[best_name]
    return BaselineMargin(float(model_bpc), str(best_name), best, float(margin),
                          bool(model_bpc < best - margin))


@dataclass(frozen=True)
class SeedsResult:
    """Per-seed outcomes of a training claim with a criterion fixed before the runs."""

    values: tuple[float, ...]
    threshold: float
    successes: int
    required: int
    holds: bool


def every_seed_below(values, threshold: float, *, required: int | None = None) -> SeedsResult:
    """Success on a seed means its value is below ``threshold``; the claim holds when at least
    ``required`` seeds succeed (default: all of them). At least 5 seeds are required."""
    values = tuple(float(x) for x in np.asarray(values, dtype=float).ravel())
    if len(values) < 5:
        raise ValueError(f"values: expected the outcomes of at least 5 seeds, got {len(values)}")
    required = len(values) if required is None else int(required)
    if not 1 <= required <= len(values):
        raise ValueError(f"required: expected 1..{len(values)}, got {required}")
    successes = sum(x < threshold for x in values)
    return SeedsResult(values, float(threshold), successes, required, successes >= required)


def exactly_linear(sizes, values) -> bool:
    """True when ``values`` are an exact affine function of ``sizes`` (integer counts: bytes,
    operations) with a positive slope; three or more points are required."""
    sizes = np.asarray(sizes, dtype=np.int64)
    values = np.asarray(values, dtype=np.int64)
    if sizes.ndim != 1 or sizes.shape != values.shape or len(sizes) < 3:
        raise ValueError(f"sizes, values: expected two 1-D sequences of the same length >= 3, "
                         f"got shapes {sizes.shape} and {values.shape}")
    slopes = {(int(b) - int(a), int(d) - int(c)) for a, b, c, d in
              zip(sizes[:-1], sizes[1:], values[:-1], values[1:])}
    ratios = {dv / ds for ds, dv in slopes}
    first_ds, first_dv = next(iter(slopes))
    exact = all(dv * first_ds == first_dv * ds for ds, dv in slopes)
    return bool(exact and min(ratios) > 0)


def closer_to_corpus(distance_after: float, distance_before: float, *, factor: float = 0.5) -> bool:
    """Sampled text moved towards the corpus: its character-frequency distance after training
    is below ``factor`` times the distance before."""
    return bool(distance_after < factor * distance_before)


@dataclass(frozen=True)
class PairedSeeds:
    """Two variants trained on the same seeds: how often the first one is lower (better)."""

    first: tuple[float, ...]
    second: tuple[float, ...]
    wins: int
    required: int
    holds: bool

    @property
    def mean_difference(self) -> float:
        """Mean over seeds of second - first (> 0: the first variant is lower on average)."""
        return float(np.mean(np.subtract(self.second, self.first)))


def wins_on_seeds(first, second, *, required: int | None = None) -> PairedSeeds:
    """Paired by seed: the first variant wins seed s when first[s] < second[s] (for example
    validation bpc of two dropout variants started from the same weights). The claim holds
    when it wins at least ``required`` seeds (default: every seed) and is lower on average.
    At least 5 seeds are required."""
    first = tuple(float(x) for x in np.asarray(first, dtype=float).ravel())
    second = tuple(float(x) for x in np.asarray(second, dtype=float).ravel())
    if len(first) != len(second) or len(first) < 5:
        raise ValueError(f"first, second: expected the outcomes of the same >= 5 seeds, "
                         f"got {len(first)} and {len(second)}")
    if not all(math.isfinite(x) for x in first + second):
        raise ValueError(f"first, second: expected finite numbers, got {first}, {second}")
    required = len(first) if required is None else int(required)
    if not 1 <= required <= len(first):
        raise ValueError(f"required: expected 1..{len(first)}, got {required}")
    wins = sum(a < b for a, b in zip(first, second))
    holds = wins >= required and float(np.mean(first)) < float(np.mean(second))
    return PairedSeeds(first, second, wins, required, bool(holds))


@dataclass(frozen=True)
class Overfitting:
    """Bits per character of the same model trained for a short and for a long schedule, on
    every pilot seed: the long run's training and validation bpc against the short run's."""

    train_short: tuple[float, ...]
    train_long: tuple[float, ...]
    valid_short: tuple[float, ...]
    valid_long: tuple[float, ...]
    margin: float  # bits per character the validation bpc must rise by
    holds: bool

    @property
    def valid_rise(self) -> tuple[float, ...]:
        """Per seed, valid_long - valid_short (> 0: training longer hurt the held-out text)."""
        return tuple(b - a for a, b in zip(self.valid_short, self.valid_long))

    @property
    def train_fall(self) -> tuple[float, ...]:
        """Per seed, train_short - train_long (> 0: training longer fitted the training text)."""
        return tuple(a - b for a, b in zip(self.train_short, self.train_long))


def overfits(train_short, train_long, valid_short, valid_long, *,
             margin: float = 0.0) -> Overfitting:
    """Is a model in the overfitting regime? On every seed, training longer lowers its
    training bpc and raises its validation bpc by more than ``margin`` bits per character.
    The four arguments hold one value per seed (at least one seed), in the same order."""
    columns = [tuple(float(x) for x in np.asarray(c, dtype=float).ravel())
               for c in (train_short, train_long, valid_short, valid_long)]
    if len({len(c) for c in columns}) != 1 or not columns[0]:
        raise ValueError(f"train_short, train_long, valid_short, valid_long: expected the same "
                         f"number (>= 1) of seeds, got {[len(c) for c in columns]}")
    if not all(math.isfinite(x) for c in columns for x in c):
        raise ValueError(f"train_short, train_long, valid_short, valid_long: expected finite "
                         f"numbers, got {columns}")
    if not (math.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin: expected a number >= 0, got {margin}")
    ts, tl, vs, vl = columns
    holds = all(b < a for a, b in zip(ts, tl)) and all(b > a + margin for a, b in zip(vs, vl))
    return Overfitting(ts, tl, vs, vl, float(margin), bool(holds))
