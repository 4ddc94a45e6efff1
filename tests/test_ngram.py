"""Interpolated Kneser-Ney character n-grams (bptt.ngram): normalisation, hand-computed values."""

import math

import numpy as np
import pytest

from bptt import ngram


@pytest.fixture(scope="module")
def toy_text():
    rng = np.random.default_rng(0)
    # a text with structure at several orders: words from a small lexicon, spaces between
    words = [rng.integers(1, 7, size=rng.integers(2, 6)) for _ in range(40)]
    return np.concatenate([np.append(words[i], 0) for i in rng.integers(0, 40, size=1500)]).astype(np.int64)


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5, 9])
def test_every_conditional_distribution_sums_to_one(toy_text, order):
    model = ngram.fit(toy_text, 7, order)
    rng = np.random.default_rng(1)
    contexts = [toy_text[i : i + 8] for i in rng.integers(0, len(toy_text) - 8, size=10)]
    contexts += [np.array([6, 6, 6, 6]), np.array([], dtype=np.int64), np.array([3])]  # unseen, empty
    for context in contexts:
        p = model.distribution(context)
        assert p.shape == (7,) and np.all(p > 0)
        assert abs(p.sum() - 1.0) < 1e-12


def test_bits_per_char_by_hand():
    # train "0101010" over V = 2, order 2, D = 0.5 for both orders.
    # Order 1 (continuation counts): N1+(. 0) = 1, N1+(. 1) = 1 -> p1 = (1 - .5 + .5 * 2 * .5) / 2 = 1/2.
    # Order 2 (raw counts): c(01) = 3, c(10) = 3; context 0: total 3, one type.
    # p(1 | 0) = (3 - .5 + .5 * 1 * p1(1)) / 3 = 2.75 / 3 = 11/12, and p(0 | 1) the same.
    model = ngram.fit(np.array([0, 1, 0, 1, 0, 1, 0]), 2, 2, discounts=(0.5, 0.5))
    np.testing.assert_allclose(model.distribution([0]), [1 / 12, 11 / 12], rtol=1e-12)
    # Stream "010": the first prediction p(1 | 0), the second p(0 | 1).
    expected = -(math.log2(11 / 12) + math.log2(11 / 12)) / 2
    assert abs(model.bits_per_char([0, 1, 0]) - expected) < 1e-12
    # the first position of a stream has no context: "10" predicted from "1" only
    np.testing.assert_allclose(model.log2_probs([1, 0]), [math.log2(11 / 12)], rtol=1e-12)


def test_unigram_by_hand():
    # counts 0: 3, 1: 1, 2: 0 over V = 3, D = 0.5: p(w) = (max(c - .5, 0) + .5 * 2 / 3) / 4.
    model = ngram.fit(np.array([0, 0, 1, 0]), 3, 1, discounts=(0.5,))
    expected = (np.array([2.5, 0.5, 0.0]) + 0.5 * 2 / 3) / 4
    np.testing.assert_allclose(model.distribution([]), expected, rtol=1e-12)


def test_streams_score_their_own_targets(toy_text):
    model = ngram.fit(toy_text[:3000], 7, 3)
    streams = toy_text[3000:3600].reshape(4, 150)
    per_row = np.concatenate([model.log2_probs(row) for row in streams])
    assert per_row.shape == (4 * 149,)
    assert model.bits_per_char(streams) == pytest.approx(-per_row.mean(), rel=1e-12)


def test_higher_orders_help_on_structured_text(toy_text):
    train, valid = toy_text[:-2000], toy_text[-2000:]
    bpc = ngram.baselines(train, valid, 7)
    assert list(bpc) == [1, 2, 3, 4, 5]
    assert bpc[1] > bpc[2] > bpc[3]
    assert bpc[1] < math.log2(7)  # the unigram beats the uniform guess on skewed counts


def test_discounts_are_tuned_on_held_out_training_ids(toy_text):
    model = ngram.fit(toy_text, 7, 3)
    assert len(model.discounts) == 3
    assert all(d in ngram.DISCOUNT_GRID for d in model.discounts)
    # the tuned discounts are no worse on the held-out part than a fixed choice
    cut = round(len(toy_text) * 0.9)
    tuned = ngram.fit(toy_text[:cut], 7, 3, discounts=model.discounts)
    fixed = ngram.fit(toy_text[:cut], 7, 3, discounts=(0.75, 0.75, 0.75))
    assert tuned.bits_per_char(toy_text[cut:]) <= fixed.bits_per_char(toy_text[cut:]) + 1e-12


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"order": 0}, "order"),
        ({"order": 10}, "order"),
        ({"order": 2, "discounts": (0.5,)}, "discounts"),
        ({"order": 1, "discounts": (1.5,)}, "discounts"),
    ],
)
def test_fit_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ngram.fit(np.arange(20) % 3, 3, **kwargs)


def test_ids_outside_the_vocabulary_are_rejected():
    with pytest.raises(ValueError, match=r"ids: expected ids in \[0, 3\)"):
        ngram.fit(np.array([0, 1, 5, 1]), 3, 1)
    model = ngram.fit(np.array([0, 1, 2, 1, 0]), 3, 2, discounts=(0.5, 0.5))
    with pytest.raises(ValueError, match="ids"):
        model.bits_per_char(np.array([0, 3]))
    with pytest.raises(ValueError, match="streams"):
        model.bits_per_char(np.zeros((2, 2, 2), dtype=int))


def _kneser_ney_by_dictionaries(train, V, order, discounts, context, w):
    """The interpolated Kneser-Ney recursion written with Python dictionaries (independent)."""
    from collections import Counter

    text = [int(i) for i in train]
    grams = {m: Counter(tuple(text[i : i + m]) for i in range(len(text) - m + 1))
             for m in range(1, order + 2)}

    def counts(m):  # raw counts at the top order, continuation counts below it
        if m == order:
            return grams[m]
        continuation = Counter(g[1:] for g in grams[m + 1])
        for g in grams[m]:  # a gram seen only at the very start of the text
            continuation.setdefault(g, 1)
        return continuation

    p = 1.0 / V
    for m in range(1, order + 1):
        h = tuple(context[len(context) - (m - 1) :]) if m > 1 else ()
        if len(h) < m - 1:
            continue
        table = counts(m)
        following = {g: c for g, c in table.items() if g[:-1] == h}
        total = sum(following.values())
        if total == 0:
            continue
        D = discounts[m - 1]
        p = (max(table.get((*h, w), 0) - D, 0) + D * len(following) * p) / total
    return p


@pytest.mark.parametrize("order", [2, 3, 4])
def test_vectorised_counts_match_a_dictionary_implementation(toy_text, order):
    train = toy_text[:1500]
    discounts = (0.3, 0.6, 0.8, 0.7)[:order]
    model = ngram.fit(train, 7, order, discounts=discounts)
    rng = np.random.default_rng(2)
    for start in rng.integers(0, 1400, size=5):
        context = [int(i) for i in toy_text[start : start + order - 1]]
        expected = [_kneser_ney_by_dictionaries(train, 7, order, discounts, context, w)
                    for w in range(7)]
        np.testing.assert_allclose(model.distribution(context), expected, rtol=1e-12)


def test_ngram_and_its_claims_do_not_import_torch():
    import subprocess
    import sys

    code = "import sys, bptt.ngram, bptt.claims.language_models; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
