"""The claims of the chapter "A character language model in numpy" and their negative controls."""

from __future__ import annotations

import pytest

from bptt.claims import char_rnn as claims

NGRAMS = {1: 4.67, 2: 3.84, 3: 2.96}


def test_beats_bigram_holds_when_every_seed_is_below_by_the_margin():
    result = claims.beats_bigram([3.2, 3.3, 3.4, 3.3, 3.5], NGRAMS, margin=0.1)
    assert result.holds and result.successes == 5
    assert result.worst_gap == pytest.approx(0.34)


@pytest.mark.negative_control
def test_beats_bigram_fails_for_a_model_that_counts_no_better_than_the_bigram():
    # one seed on the plateau of unigram statistics, and one just above the margin
    assert not claims.beats_bigram([3.2, 3.3, 4.5, 3.3, 3.5], NGRAMS, margin=0.1).holds
    assert not claims.beats_bigram([3.2, 3.3, 3.79, 3.3, 3.5], NGRAMS, margin=0.1).holds


def test_beats_bigram_validates():
    with pytest.raises(ValueError, match="at least 5 seeds"):
        claims.beats_bigram([3.0] * 4, NGRAMS)
    with pytest.raises(ValueError, match="bigram"):
        claims.beats_bigram([3.0] * 5, {1: 4.0})


def test_unit_tracks_feature_holds_above_both_opponents():
    finding = claims.unit_tracks_feature(-0.51, 0.15, -0.02, margin=0.1)
    assert finding.holds and finding.gap == pytest.approx(0.36)


@pytest.mark.negative_control
def test_unit_tracks_feature_fails_for_an_untrained_or_memoryless_world():
    # the trained unit is no better than the units at initialisation
    assert not claims.unit_tracks_feature(0.2, 0.15, 0.0, margin=0.1).holds
    # the current character alone explains as much as the unit
    assert not claims.unit_tracks_feature(0.6, 0.1, 0.55, margin=0.1).holds


def test_temperature_orders_words_holds_for_a_falling_fraction():
    assert claims.temperature_orders_words({0.5: 0.9, 1.0: 0.7, 1.5: 0.4})


@pytest.mark.negative_control
def test_temperature_orders_words_fails_for_a_sampler_that_ignores_the_temperature():
    assert not claims.temperature_orders_words({0.5: 0.7, 1.0: 0.71, 1.5: 0.69})
    assert not claims.temperature_orders_words({0.5: 0.72, 1.0: 0.7, 1.5: 0.68})
