"""bptt.tasks: the synthetic tasks (shapes, rules, empirical baselines) and the corpus."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bptt.tasks import (
    ADDING_BASELINE_MSE,
    IGNORE_INDEX,
    Vocabulary,
    adding_problem,
    char_corpus,
    copy_memory,
    copy_memory_baseline,
    delayed_recall,
    delayed_recall_baseline,
    load_text,
)


def _memoryless_cross_entropy(train_y: np.ndarray, test_y: np.ndarray, n_classes: int) -> float:
    """Mean cross-entropy on test_y of the best predictor that sees only the time index: the
    per-position class frequencies of train_y (ignored targets left out)."""
    total, count = 0.0, 0
    for t in range(train_y.shape[1]):
        seen = train_y[:, t][train_y[:, t] != IGNORE_INDEX]
        scored = test_y[:, t][test_y[:, t] != IGNORE_INDEX]
        if scored.size == 0:
            continue
        probs = np.bincount(seen, minlength=n_classes) / seen.size
        total -= np.log(probs[scored]).sum()
        count += scored.size
    return total / count


# ------------------------------------------------------------------------- adding problem
@given(n=st.integers(1, 20), length=st.integers(2, 30), seed=st.integers(0, 10**6))
def test_adding_problem_structure(n, length, seed):
    x, y = adding_problem(n, length, seed=seed)
    assert x.shape == (n, length, 2) and y.shape == (n, 1)
    assert x.dtype == y.dtype == np.float64
    values, markers = x[..., 0], x[..., 1]
    assert ((values >= 0) & (values <= 1)).all()
    assert (markers.sum(axis=1) == 2).all() and set(np.unique(markers)) <= {0.0, 1.0}
    half = length // 2
    assert (markers[:, :half].sum(axis=1) == 1).all()
    np.testing.assert_array_equal(y[:, 0], (values * markers).sum(axis=1))


def test_adding_problem_constant_one_scores_one_sixth():
    _, y = adding_problem(200_000, 8, seed=1)
    assert ADDING_BASELINE_MSE == 1 / 6
    assert np.mean((y - 1.0) ** 2) == pytest.approx(1 / 6, abs=3e-3)  # s.e. 4.4e-4
    assert np.mean(y) == pytest.approx(1.0, abs=3e-3)


# ---------------------------------------------------------------------------- copy memory
@given(
    n=st.integers(1, 10),
    delay=st.integers(1, 30),
    n_symbols=st.integers(1, 9),
    n_copy=st.integers(1, 12),
)
def test_copy_memory_structure(n, delay, n_symbols, n_copy):
    x, y = copy_memory(n, delay, n_symbols=n_symbols, n_copy=n_copy, seed=n)
    length = delay + 2 * n_copy
    assert x.shape == y.shape == (n, length) and x.dtype == y.dtype == np.int64
    symbols = x[:, :n_copy]
    assert ((symbols >= 1) & (symbols <= n_symbols)).all()
    go = n_copy + delay - 1
    assert (x[:, go] == n_symbols + 1).all()
    assert not x[:, n_copy:go].any() and not x[:, go + 1 :].any()
    np.testing.assert_array_equal(y[:, -n_copy:], symbols)
    assert not y[:, :-n_copy].any()


@pytest.mark.parametrize("delay", [10, 100])
def test_copy_memory_memoryless_baseline(delay):
    expected = copy_memory_baseline(delay)
    assert expected == pytest.approx(10 * math.log(8) / (delay + 20))
    _, train_y = copy_memory(20_000, delay, seed=1)
    _, test_y = copy_memory(20_000, delay, seed=2)
    assert _memoryless_cross_entropy(train_y, test_y, 9) == pytest.approx(expected, rel=5e-3)


# ------------------------------------------------------------------------- delayed recall
@given(
    n=st.integers(1, 5),
    length=st.integers(1, 40),
    lag=st.integers(0, 40),
    n_symbols=st.integers(2, 10),
)
def test_delayed_recall_structure(n, length, lag, n_symbols):
    if lag >= length:
        with pytest.raises(ValueError, match="lag: expected 0 <= lag < length"):
            delayed_recall(n, length, lag, n_symbols=n_symbols)
        return
    x, y = delayed_recall(n, length, lag, n_symbols=n_symbols, seed=lag)
    assert x.shape == y.shape == (n, length)
    assert ((x >= 0) & (x < n_symbols)).all()
    assert (y[:, :lag] == IGNORE_INDEX).all()
    np.testing.assert_array_equal(y[:, lag:], x[:, : length - lag])


def test_delayed_recall_memoryless_baseline():
    _, train_y = delayed_recall(5_000, 40, 7, seed=1)
    _, test_y = delayed_recall(5_000, 40, 7, seed=2)
    measured = _memoryless_cross_entropy(train_y, test_y, 8)
    assert measured == pytest.approx(delayed_recall_baseline(8), rel=5e-3)
    assert delayed_recall_baseline(8) == math.log(8)


# ---------------------------------------------------------------------------- reproducible
@pytest.mark.parametrize(
    "make",
    [
        lambda seed: adding_problem(5, 10, seed=seed),
        lambda seed: copy_memory(5, 10, seed=seed),
        lambda seed: delayed_recall(5, 10, 3, seed=seed),
    ],
)
def test_same_seed_same_data_other_seed_other_data(make):
    a, b, c = make(3), make(3), make(4)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
    assert all(np.array_equal(p, q) for p, q in zip(make(rng_a), make(rng_b)))


@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda: adding_problem(0, 10), ValueError, "n"),
        (lambda: adding_problem(3, 1), ValueError, "length"),
        (lambda: adding_problem(3, 10, seed="x"), TypeError, "seed"),
        (lambda: copy_memory(3, 0), ValueError, "delay"),
        (lambda: copy_memory(3, 5, n_copy=0), ValueError, "n_copy"),
        (lambda: delayed_recall(3, 5, -1), ValueError, "lag"),
        (lambda: delayed_recall(3, 5, 1, n_symbols=1), ValueError, "n_symbols"),
        (lambda: delayed_recall(3, 5.0, 1), TypeError, "length"),
    ],
)
def test_bad_arguments_name_the_argument(call, error, name):
    with pytest.raises(error, match=f"^{name}: "):
        call()


# -------------------------------------------------------------------------------- corpus
@pytest.fixture(scope="module")
def corpus():
    return char_corpus(seed=0)


def test_corpus_is_sizeable_printable_and_split(corpus):
    assert len(corpus.train) > 300_000 and len(corpus.valid) > 30_000
    assert len(corpus.valid) / (len(corpus.train) + len(corpus.valid)) == pytest.approx(0.1, 1e-4)
    assert set(corpus.vocab.chars) <= set("\n" + "".join(map(chr, range(32, 127))))
    assert 60 <= len(corpus.vocab) <= 96
    text = corpus.vocab.decode(corpus.train[:2000])
    assert "the" in text and corpus.vocab.encode(text).tolist() == corpus.train[:2000].tolist()


def test_corpus_is_deterministic_and_the_seed_reorders_documents(corpus):
    again = char_corpus(seed=0, max_chars=50_000)
    prefix = corpus.vocab.decode(corpus.train[: len(again.train)])
    assert again.vocab.decode(again.train) == prefix
    other = load_text(seed=1)
    assert sorted(other) == sorted(load_text(seed=0)) and other != load_text(seed=0)


def test_docstring_corpus_needs_only_the_standard_library():
    text = load_text(source="docstrings")
    assert len(text) > 100_000 and "\t" not in text
    small = char_corpus(source="docstrings", max_chars=5_000, valid_fraction=0.2)
    assert len(small.train) == 4_000 and len(small.valid) == 1_000


def test_vocabulary_round_trip_and_errors():
    vocab = Vocabulary.from_text("hello world")
    assert vocab.chars == " dehlorw" and len(vocab) == 8
    ids = vocab.encode("low")
    assert ids.dtype == np.int64 and vocab.decode(ids) == "low"
    with pytest.raises(ValueError, match=r"text: characters not in the vocabulary: \['z'\]"):
        vocab.encode("zoo")
    with pytest.raises(ValueError, match=r"ids: expected a 1-D sequence of ids in \[0, 8\)"):
        vocab.decode([8])
    with pytest.raises(ValueError, match="text: expected a non-empty string"):
        Vocabulary.from_text("")
    with pytest.raises(ValueError, match="source"):
        load_text(source="wikipedia")
    with pytest.raises(ValueError, match="valid_fraction"):
        char_corpus(valid_fraction=1.0)
    with pytest.raises(ValueError, match="max_chars"):
        char_corpus(max_chars=10)


def test_tasks_module_never_imports_torch():
    code = "import sys, bptt.tasks; bptt.tasks.adding_problem(2, 4); print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_text_statistics_by_hand():
    from bptt.tasks import text_statistics

    stats = text_statistics("It is. So it is. and no.  Yes", "it is so yes")
    assert stats.full_stops == 3  # ". S", ". a", ".  Y"
    assert stats.capital_after_full_stop == pytest.approx(2 / 3)
    # words of 2+ letters: It is So it is and no Yes; in the reference: is, it, is
    assert stats.known_words == pytest.approx(3 / 8)
    assert text_statistics("abc", "abc").char_distance == 0.0
    assert text_statistics("aaa", "bbb").char_distance == 1.0
    assert np.isnan(text_statistics("no stop here", "x").capital_after_full_stop)
    with pytest.raises(ValueError, match="reference"):
        text_statistics("abc", "")



def test_verbatim_mask_marks_the_characters_of_windows_found_in_the_reference():
    from bptt.tasks import verbatim_mask

    # windows of 3 in "qabcq": qab, abc, bcq; only "abc" is in the reference
    np.testing.assert_array_equal(verbatim_mask("qabcq", "..abc..", length=3),
                                  [False, True, True, True, False])
    assert verbatim_mask("abcxyz", "..abc..xyz..", length=3).all()
    assert not verbatim_mask("aaaa", "bbbb", length=2).any()
    with pytest.raises(ValueError, match="text: expected a string of at least length = 5"):
        verbatim_mask("abc", "abcdefgh", length=5)
    with pytest.raises(ValueError, match="length"):
        verbatim_mask("abc", "abc", length=0)


@pytest.mark.negative_control
def test_held_out_text_of_the_same_kind_but_new_has_little_to_copy():
    # The capstone asserts that over a fifth of its validation text lies in 80-character
    # windows found verbatim in the training text. Technical English of the same kind that
    # is not in the help topics (the docstrings of standard modules) has far less to copy.
    from bptt.tasks import char_corpus, load_text, verbatim_mask

    corpus = char_corpus(max_chars=300_000, seed=0)
    train = corpus.vocab.decode(corpus.train)
    other = load_text(source="docstrings", seed=0)[:30_000]
    assert verbatim_mask(other, train, length=80).mean() < 0.2
