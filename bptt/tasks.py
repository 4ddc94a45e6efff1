"""Synthetic sequence tasks and a character corpus that needs no download (numpy only).

Every generator takes ``seed`` (an int or a ``numpy.random.Generator``) and returns numpy
arrays, batch first; :func:`bptt.torch.to_tensors` turns them into tensors.

* :func:`adding_problem` (Hochreiter and Schmidhuber, 1997; Gated architectures): x (n, T, 2), the
  first channel U[0, 1] values, the second marks two positions; y (n, 1) = X1 + X2.
  Always predicting 1 = E[X1 + X2] scores MSE = Var(X1 + X2) = 2/12 = 1/6.
* :func:`copy_memory` (Arjovsky, Shah and Bengio, 2016; Gated architectures): remember 10 symbols out
  of 8 across a delay; a model without memory scores cross-entropy 10 ln 8 / (T + 20).
* :func:`delayed_recall` (TBPTT(k1, k2) and the bias of truncation): y_t = x_{t - L}; without memory ln(n_symbols) per
  scored step.
* :func:`char_corpus` (Capstone: a character-level language model): the help topics that ship with Python itself
  (``pydoc_data.topics``, the text of ``help('FOR')`` and friends), or the docstrings of
  standard-library modules, as character ids with a :class:`Vocabulary`;
* :func:`text_statistics`: measured facts about (sampled) text against a reference text.
"""

from __future__ import annotations

import importlib
import inspect
import math
import re
from dataclasses import dataclass

import numpy as np

from bptt import _validate as v

IGNORE_INDEX = -100
"""Target value for steps that carry no loss (the default ``ignore_index`` of torch's
cross-entropy)."""


# ------------------------------------------------------------------------- adding problem
ADDING_BASELINE_MSE = 1.0 / 6.0
"""MSE of always predicting 1 on the adding problem: Var(X1 + X2) = 2 * 1/12."""


def adding_problem(n: int, length: int, *, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """n sequences of the adding problem of length T = ``length`` (>= 2).

    Returns x (n, T, 2) float64 and y (n, 1) float64: x[..., 0] ~ U[0, 1] i.i.d., x[..., 1]
    is 1 at one position in the first half (t < T//2) and one in the second half, 0
    elsewhere; y = the sum of the two marked values.
    """
    v.integer("n", n, minimum=1)
    v.integer("length", length, minimum=2)
    rng = v.generator("seed", seed)
    values = rng.uniform(0.0, 1.0, size=(n, length))
    half = length // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, length, size=n)
    markers = np.zeros((n, length))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1)
    y = (values[rows, first] + values[rows, second])[:, None]
    return x, y


# ---------------------------------------------------------------------------- copy memory
def copy_memory(
    n: int, delay: int, *, n_symbols: int = 8, n_copy: int = 10, seed=0
) -> tuple[np.ndarray, np.ndarray]:
    """n sequences of the copy-memory task, each of length T + 2 * n_copy (T = ``delay``).

    Token ids: 0 blank, 1..n_symbols the symbols, n_symbols + 1 the "go" delimiter.
    Input: n_copy random symbols, T - 1 blanks, the delimiter, n_copy blanks.
    Target: T + n_copy blanks, then the n_copy symbols in order. Returns x, y (n, T + 2
    n_copy) int64; the model must output n_symbols + 1 classes (blank and symbols).
    """
    v.integer("n", n, minimum=1)
    v.integer("delay", delay, minimum=1)
    v.integer("n_symbols", n_symbols, minimum=1)
    v.integer("n_copy", n_copy, minimum=1)
    rng = v.generator("seed", seed)
    length = delay + 2 * n_copy
    symbols = rng.integers(1, n_symbols + 1, size=(n, n_copy))
    x = np.zeros((n, length), dtype=np.int64)
    y = np.zeros((n, length), dtype=np.int64)
    x[:, :n_copy] = symbols
    x[:, n_copy + delay - 1] = n_symbols + 1
    y[:, -n_copy:] = symbols
    return x, y


def copy_memory_baseline(delay: int, *, n_symbols: int = 8, n_copy: int = 10) -> float:
    """Cross-entropy per step of the best model without memory: n_copy ln(n_symbols) / (T + 2
    n_copy) - blanks are certain, each recalled symbol is a uniform guess."""
    return n_copy * math.log(n_symbols) / (delay + 2 * n_copy)


# ------------------------------------------------------------------------- delayed recall
def delayed_recall(
    n: int, length: int, lag: int, *, n_symbols: int = 8, seed=0
) -> tuple[np.ndarray, np.ndarray]:
    """n streams of T = ``length`` random symbols and the task of recalling each L = ``lag``
    steps later.

    Returns x (n, T) int64 uniform in [0, n_symbols) and y (n, T) int64 with
    y[:, t] = x[:, t - L] for t >= L and :data:`IGNORE_INDEX` for t < L. Learning it needs
    credit assignment over L steps (TBPTT(k1, k2) and the bias of truncation: truncation below L cannot learn it).
    """
    v.integer("n", n, minimum=1)
    v.integer("length", length, minimum=1)
    v.integer("lag", lag, minimum=0)
    v.integer("n_symbols", n_symbols, minimum=2)
    if lag >= length:
        raise ValueError(f"lag: expected 0 <= lag < length = {length}, got {lag}")
    x = v.generator("seed", seed).integers(0, n_symbols, size=(n, length))
    y = np.full_like(x, IGNORE_INDEX)
    y[:, lag:] = x[:, : length - lag]
    return x, y


def delayed_recall_baseline(n_symbols: int = 8) -> float:
    """Cross-entropy per scored step without memory: ln(n_symbols) (a uniform guess)."""
    return math.log(n_symbols)


# ------------------------------------------------------------------------- the corpus
# fmt: off
DOCSTRING_MODULES = (
    "abc", "argparse", "bisect", "calendar", "collections", "contextlib", "copy", "csv",
    "dataclasses", "datetime", "decimal", "difflib", "enum", "fractions", "functools", "glob",
    "heapq", "inspect", "io", "itertools", "json", "logging", "math", "operator", "os",
    "pathlib", "pickle", "pprint", "random", "re", "shutil", "statistics", "string",
    "subprocess", "tempfile", "textwrap", "threading", "unittest", "zipfile",
)
# fmt: on
"""Standard-library modules whose docstrings make the fallback corpus."""


def _topic_documents() -> list[str]:
    from pydoc_data.topics import topics  # the text behind help('KEYWORD'), ships with Python

    return [topics[key] for key in sorted(topics)]


def _docstring_documents() -> list[str]:
    documents = []
    for name in DOCSTRING_MODULES:
        module = importlib.import_module(name)
        parts = [inspect.getdoc(module) or ""]
        for attr in sorted(vars(module)):
            obj = getattr(module, attr)
            if not attr.startswith("_") and getattr(obj, "__module__", None) == name:
                parts.append(inspect.getdoc(obj) or "")
        documents.append("\n\n".join(p for p in parts if p))
    return documents


def _clean(text: str) -> str:
    """Printable ASCII and newlines only; tabs become four spaces."""
    text = text.replace("\t", "    ")
    return "".join(ch for ch in text if ch == "\n" or " " <= ch <= "~")


def load_text(*, source: str = "topics", seed=0) -> str:
    """The corpus as one string: its documents in an order shuffled by ``seed``.

    ``source="topics"``: the help topics of ``pydoc_data`` (~0.45 M characters on Python
    3.11); ``"docstrings"``: docstrings of :data:`DOCSTRING_MODULES`. The text is whatever
    the running Python ships, so it is fixed for a given Python version.
    """
    loaders = {"topics": _topic_documents, "docstrings": _docstring_documents}
    if source not in loaders:
        raise ValueError(f"source: expected 'topics' or 'docstrings', got {source!r}")
    documents = loaders[source]()
    order = v.generator("seed", seed).permutation(len(documents))
    return "\n\n".join(_clean(documents[i]).strip() for i in order)


@dataclass(frozen=True)
class Vocabulary:
    """Characters <-> integer ids; ``chars[i]`` is the character of id i (sorted order)."""

    chars: str

    @classmethod
    def from_text(cls, text: str) -> Vocabulary:
        if not isinstance(text, str) or not text:
            raise ValueError("text: expected a non-empty string")
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """Ids of ``text``, shape (len(text),) int64; an unknown character is a ValueError."""
        index = {ch: i for i, ch in enumerate(self.chars)}
        unknown = sorted(set(text) - index.keys())
        if unknown:
            raise ValueError(f"text: characters not in the vocabulary: {unknown!r}")
        return np.fromiter((index[ch] for ch in text), dtype=np.int64, count=len(text))

    def decode(self, ids) -> str:
        """The text of ``ids`` (any 1-D sequence of ints in [0, len(vocab)))."""
        ids = np.asarray(ids)
        if ids.ndim != 1 or (ids.size and (ids.min() < 0 or ids.max() >= len(self))):
            raise ValueError(
                f"ids: expected a 1-D sequence of ids in [0, {len(self)}), got shape {ids.shape}"
            )
        return "".join(self.chars[i] for i in ids.tolist())


@dataclass(frozen=True)
class CharCorpus:
    """A character corpus: ``train`` and ``valid`` id arrays (N,) int64 and their vocabulary."""

    vocab: Vocabulary
    train: np.ndarray
    valid: np.ndarray


def char_corpus(
    *, max_chars: int | None = None, valid_fraction: float = 0.1, source: str = "topics", seed=0
) -> CharCorpus:
    """The corpus of :func:`load_text`, cut to ``max_chars``, split into train/validation.

    The last ``valid_fraction`` of the (seed-shuffled) text is the validation part; the
    vocabulary is built from the whole cut text so both parts encode.
    """
    if max_chars is not None:
        v.integer("max_chars", max_chars, minimum=100)
    if not 0.0 < valid_fraction < 1.0:
        raise ValueError(f"valid_fraction: expected a number in (0, 1), got {valid_fraction!r}")
    text = load_text(source=source, seed=seed)[:max_chars]
    vocab = Vocabulary.from_text(text)
    ids = vocab.encode(text)
    cut = round(len(ids) * (1.0 - valid_fraction))
    return CharCorpus(vocab, ids[:cut], ids[cut:])


# ------------------------------------------------------------------ statistics of text
_FULL_STOP_THEN_LETTER = re.compile(r"\.\s+([A-Za-z])")
_WORD = re.compile(r"[A-Za-z]{2,}")


@dataclass(frozen=True)
class TextStatistics:
    """Computed facts about a piece of text, measured against a reference text.

    ``full_stops``: occurrences of a full stop, white space, then a letter;
    ``capital_after_full_stop``: the fraction of those letters that are capitals (NaN if none);
    ``known_words``: the fraction of the text's words (runs of 2+ letters) that occur in the
    reference (NaN if it has none); ``char_distance``: total variation distance between the
    character frequencies of the text and of the reference (0 equal, 1 disjoint).
    """

    full_stops: int
    capital_after_full_stop: float
    known_words: float
    char_distance: float


def text_statistics(text: str, reference: str) -> TextStatistics:
    """:class:`TextStatistics` of ``text`` against ``reference`` (for example sampled text
    against the training text of Capstone: a character-level language model)."""
    for name, value in (("text", text), ("reference", reference)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name}: expected a non-empty string, got {value!r:.40}")
    after = _FULL_STOP_THEN_LETTER.findall(text)
    capitals = float(np.mean([c.isupper() for c in after])) if after else float("nan")
    vocabulary = set(_WORD.findall(reference))
    words = _WORD.findall(text)
    known = float(np.mean([w in vocabulary for w in words])) if words else float("nan")
    chars = sorted(set(text) | set(reference))
    index = {ch: i for i, ch in enumerate(chars)}

    def frequencies(s):
        counts = np.bincount([index[ch] for ch in s], minlength=len(chars))
        return counts / counts.sum()

    distance = 0.5 * float(np.abs(frequencies(text) - frequencies(reference)).sum())
    return TextStatistics(len(after), capitals, known, distance)


def verbatim_mask(text: str, reference: str, *, length: int = 80) -> np.ndarray:
    """Which characters of ``text`` lie inside a window of ``length`` characters of ``text``
    that occurs verbatim somewhere in ``reference``: a bool array (len(text),). Its mean is the
    fraction of a held-out text that a model could copy from its training text rather than
    predict (0 none, 1 all)."""
    v.integer("length", length, minimum=1)
    for name, value in (("text", text), ("reference", reference)):
        if not isinstance(value, str) or len(value) < length:
            raise ValueError(f"{name}: expected a string of at least length = {length} "
                             f"characters, got {value!r:.40}")
    seen = {reference[i:i + length] for i in range(len(reference) - length + 1)}
    starts = np.array([text[i:i + length] in seen for i in range(len(text) - length + 1)])
    # character j is covered when a found window starts in (j - length, j]
    found = np.concatenate([[0], np.cumsum(starts)])
    ends = np.arange(len(text)) + 1
    return (found[np.minimum(ends, len(starts))] - found[np.maximum(ends - length, 0)]) > 0
