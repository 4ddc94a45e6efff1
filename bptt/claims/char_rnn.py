"""Claims of the chapter "A character language model in numpy", one predicate each.

* :func:`beats_bigram` - the numpy character RNN needs fewer bits per character on the
  validation text than the interpolated Kneser-Ney bigram, on every seed, by a margin;
* :func:`unit_tracks_feature` - one hidden unit of the trained network correlates with a
  property of the text more strongly than any unit of the same network at initialisation and
  than the best guess from the current character alone;
* :func:`temperature_orders_words` - sampling at a lower temperature writes more words that
  occur in the training text.

The chapter calls them on its runs; ``tests/test_claims_char_rnn.py`` calls them on worlds
where the claims are false (a model that counts no better than the bigram, a unit no better
than chance, a sampler that ignores the temperature) and shows that they fail.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BigramMargin:
    """Per-seed validation bits per character against the bigram's."""

    model_bpc: tuple[float, ...]
    bigram_bpc: float
    margin: float
    successes: int
    holds: bool

    @property
    def worst_gap(self) -> float:
        """How far the worst seed lies below the bigram (bits per character; > 0 is better)."""
        return self.bigram_bpc - max(self.model_bpc)


def beats_bigram(model_bpc, ngram_bpc: dict, *, margin: float = 0.1) -> BigramMargin:
    """Every seed's bpc lies more than ``margin`` bits per character below the bigram's.

    ``model_bpc``: one validation bpc per seed (at least 5, the criterion fixed before the
    runs); ``ngram_bpc``: {order: bpc} of :func:`bptt.ngram.baselines` on the same validation
    streams, with the order 2 among them.
    """
    values = tuple(float(x) for x in np.asarray(model_bpc, dtype=float).ravel())
    if len(values) < 5:
        raise ValueError(f"model_bpc: expected the outcomes of at least 5 seeds, got {len(values)}")
    if 2 not in ngram_bpc:
        raise ValueError(f"ngram_bpc: expected the bigram (order 2) among the orders, got {sorted(ngram_bpc)}")
    bigram = float(ngram_bpc[2])
    if not all(math.isfinite(x) for x in (*values, bigram)):
        raise ValueError(f"model_bpc, ngram_bpc: expected finite numbers, got {values}, {bigram}")
    if not margin >= 0:
        raise ValueError(f"margin: expected a number >= 0, got {margin}")
    successes = sum(x < bigram - margin for x in values)
    return BigramMargin(values, bigram, float(margin), successes, successes == len(values))


@dataclass(frozen=True)
class UnitFinding:
    """A unit's correlation with a feature against its two opponents."""

    r: float  # correlation of the unit found, on the text it is reported on
    r_init: float  # best |r| of the same search at initialisation, same text
    r_memoryless: float  # |r| of the best guess from the current character alone
    margin: float
    holds: bool

    @property
    def gap(self) -> float:
        """How far |r| lies above the stronger opponent."""
        return abs(self.r) - max(abs(self.r_init), abs(self.r_memoryless))


def unit_tracks_feature(r: float, r_init: float, r_memoryless: float, *,
                        margin: float = 0.1) -> UnitFinding:
    """|r| exceeds both |r_init| (the same search over the untrained network's units) and
    |r_memoryless| (what the current character alone explains) by more than ``margin``."""
    values = tuple(float(x) for x in (r, r_init, r_memoryless))
    if not all(math.isfinite(x) and -1.0 <= x <= 1.0 for x in values):
        raise ValueError(f"r, r_init, r_memoryless: expected correlations in [-1, 1], got {values}")
    if not margin >= 0:
        raise ValueError(f"margin: expected a number >= 0, got {margin}")
    holds = abs(values[0]) > max(abs(values[1]), abs(values[2])) + margin
    return UnitFinding(*values, float(margin), bool(holds))


def temperature_orders_words(known_words: dict, *, margin: float = 0.1) -> bool:
    """{temperature: fraction of sampled words that occur in the training text}: the fraction
    falls from each temperature to the next higher one, and by more than ``margin`` from the
    lowest to the highest."""
    if len(known_words) < 2:
        raise ValueError(f"known_words: expected at least two temperatures, got {len(known_words)}")
    fractions = [float(known_words[t]) for t in sorted(known_words)]
    falling = all(a > b for a, b in itertools.pairwise(fractions))
    return bool(falling and fractions[0] - fractions[-1] > margin)
