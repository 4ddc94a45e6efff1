"""The claim predicates of the language-model chapters and their negative controls."""

import numpy as np
import pytest

from bptt import ngram
from bptt.claims import language_models as claims


@pytest.fixture(scope="module")
def world():
    """A toy 'language' whose next symbol depends on the previous two: a trigram world."""
    rng = np.random.default_rng(0)
    table = rng.dirichlet(np.full(6, 0.3), size=(6, 6))  # p(w | u, v), peaked
    ids = [0, 1]
    for _ in range(29_998):
        ids.append(int(rng.choice(6, p=table[ids[-2], ids[-1]])))
    ids = np.array(ids)
    train, valid = ids[:27_000], ids[27_000:]
    return train, valid.reshape(4, -1)


def test_beats_best_baseline_reports_the_margin():
    result = claims.beats_best_baseline(1.8, {1: 4.5, 2: 3.0, 5: 2.0}, margin=0.1)
    assert result.holds and result.best_name == "5" and result.best_bpc == 2.0
    assert result.gap == pytest.approx(0.2)
    assert not claims.beats_best_baseline(1.95, {1: 4.5, 5: 2.0}, margin=0.1).holds


@pytest.mark.negative_control
def test_a_model_no_better_than_the_trigram_does_not_beat_the_best_ngram(world):
    """The capstone's claim fails for a 'recurrent model' that is only as good as a trigram."""
    train, valid = world
    baselines = ngram.baselines(train, valid, 6)
    trigram_like = ngram.fit(train, 6, 3).bits_per_char(valid)
    assert not claims.beats_best_baseline(trigram_like, baselines).holds
    # and a unigram-level model fails the bigram margin of the PyTorch chapter's check
    unigram_like = baselines[1]
    assert not claims.beats_best_baseline(unigram_like, {2: baselines[2]}, margin=0.05).holds
    # while a model that knows the true table does beat them all (the claim can hold)
    assert baselines[3] < baselines[2] < baselines[1]


@pytest.mark.negative_control
def test_the_seed_criterion_fails_when_one_seed_misses():
    assert claims.every_seed_below([1.0, 1.1, 1.2, 1.3, 1.4], 1.5).holds
    result = claims.every_seed_below([1.0, 1.1, 1.2, 1.3, 1.6], 1.5)
    assert not result.holds and result.successes == 4
    with pytest.raises(ValueError, match="at least 5 seeds"):
        claims.every_seed_below([1.0, 1.1], 1.5)


def test_predicates_validate_their_arguments():
    with pytest.raises(ValueError, match="baselines"):
        claims.beats_best_baseline(1.0, {})
    with pytest.raises(ValueError, match="margin"):
        claims.beats_best_baseline(1.0, {1: 2.0}, margin=-1)
    with pytest.raises(ValueError, match="finite"):
        claims.beats_best_baseline(float("nan"), {1: 2.0})


@pytest.mark.negative_control
def test_exactly_linear_refuses_quadratic_growth():
    assert claims.exactly_linear([5, 35, 100], [100 + 8 * k for k in (5, 35, 100)])
    assert not claims.exactly_linear([5, 35, 100], [100 + k * k for k in (5, 35, 100)])
    assert not claims.exactly_linear([5, 35, 100], [100, 100, 100])  # flat is not growth
    with pytest.raises(ValueError, match="sizes, values"):
        claims.exactly_linear([1, 2], [3, 4])


@pytest.mark.negative_control
def test_an_untrained_sampler_is_not_closer_to_the_corpus():
    from bptt import tasks

    rng = np.random.default_rng(0)
    reference = "the quick brown fox jumps over the lazy dog. " * 20
    alphabet = np.array(list("abcdefghijklmnopqrstuvwxyz .XYZ!?"))
    untrained = ["".join(rng.choice(alphabet, 500)) for _ in range(2)]
    d = [tasks.text_statistics(t, reference).char_distance for t in untrained]
    assert not claims.closer_to_corpus(d[1], d[0])  # two random samplers: no progress
    trained = tasks.text_statistics(reference[:400], reference).char_distance
    assert claims.closer_to_corpus(trained, d[0])


@pytest.mark.negative_control
def test_a_model_within_the_margin_of_the_best_ngram_does_not_beat_it(world):
    """The capstone's margin: a model a hair below the best n-gram fails a 0.02-bit margin,
    and so does the best n-gram itself (a count model cannot beat itself)."""
    train, valid = world
    baselines = ngram.baselines(train, valid, 6)
    best = min(baselines.values())
    assert not claims.beats_best_baseline(best, baselines).holds
    assert not claims.beats_best_baseline(best - 0.01, baselines, margin=0.02).holds
    assert claims.beats_best_baseline(best - 0.03, baselines, margin=0.02).holds


@pytest.mark.negative_control
def test_wins_on_seeds_fails_for_equal_or_worse_variants():
    rng = np.random.default_rng(0)
    base = 2.0 + 0.05 * rng.standard_normal(5)
    better = base - 0.02
    assert claims.wins_on_seeds(better, base).holds
    # the same variant twice (an identical-worlds control) never wins
    result = claims.wins_on_seeds(base, base)
    assert not result.holds and result.wins == 0
    # noise without an effect: two independent draws of the same variant
    noise = [claims.wins_on_seeds(2.0 + 0.05 * rng.standard_normal(5),
                                  2.0 + 0.05 * rng.standard_normal(5)).holds for _ in range(200)]
    assert np.mean(noise) < 0.1  # all five paired wins by chance: 1/32 of the time
    # a variant that wins 4 of 5 seeds but loses on average does not hold either
    assert not claims.wins_on_seeds([1.0, 1.0, 1.0, 1.0, 3.0], [1.1] * 5, required=4).holds
    assert claims.wins_on_seeds([1.0, 1.0, 1.0, 1.0, 1.2], [1.1] * 5, required=4).holds
    assert claims.wins_on_seeds(better, base).mean_difference == pytest.approx(0.02)
    with pytest.raises(ValueError, match="same >= 5 seeds"):
        claims.wins_on_seeds([1.0] * 5, [1.0] * 4)


def test_overfits_holds_when_training_longer_helps_train_and_hurts_valid():
    result = claims.overfits([2.4, 2.5], [1.3, 1.3], [4.1, 4.1], [4.3, 4.3], margin=0.05)
    assert result.holds
    assert result.valid_rise == pytest.approx((0.2, 0.2))
    assert result.train_fall == pytest.approx((1.1, 1.2))


@pytest.mark.negative_control
def test_an_underfitting_model_does_not_overfit():
    # the old reduced scale of the capstone's dropout section: both bpc still falling
    assert not claims.overfits([3.8, 3.8], [3.3, 3.2], [4.2, 4.2], [3.8, 3.8]).holds
    # validation bpc flat (within the margin) on one seed, rising on the other
    assert not claims.overfits([2.5, 2.5], [1.5, 1.4], [4.05, 4.0], [4.07, 4.2],
                               margin=0.05).holds
    # validation rises but training does not fall: not overfitting, just worse
    assert not claims.overfits([2.0, 2.0], [2.1, 1.9], [4.0, 4.0], [4.3, 4.3]).holds


def test_overfits_validates_its_arguments():
    with pytest.raises(ValueError, match="same number"):
        claims.overfits([1.0], [1.0, 2.0], [1.0], [1.0])
    with pytest.raises(ValueError, match="finite"):
        claims.overfits([1.0], [float("nan")], [1.0], [1.0])
    with pytest.raises(ValueError, match="margin"):
        claims.overfits([1.0], [0.5], [1.0], [2.0], margin=-1)
