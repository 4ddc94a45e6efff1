"""A character language model from scratch in numpy: the min-char-rnn idea, batched.

The chapter "A character language model in numpy" builds it. The network is the tanh RNN of
:mod:`bptt.rnn` ("BPTT from scratch in numpy") reading one-hot characters, x_t = e_{chi_t} (V,),
and predicting the next one through the softmax of its logits o_t (V,):

    h_t = tanh(W_xh x_t + W_hh h_{t-1} + b),   o_t = W_hy h_t + b_y,
    L   = mean over the batch and the T steps of a chunk of -log softmax(o_t)[chi_{t+1}].

Everything that differentiates comes from :mod:`bptt.rnn` (its forward, read-out, loss and
backward); this module adds what turns the gradient into a language model, as in Karpathy's
min-char-rnn (2015), but with B streams at once:

* :func:`batchify` and :func:`stream_chunks`: the text as B contiguous streams read in chunks
  of T steps, the state carried from chunk to chunk (truncated BPTT over a stream);
* :func:`chunk_loss_and_gradients`: one chunk forward and backward from a carried state;
* :func:`clip_by_norm` (eq. ``char-rnn-clip``) and :func:`adagrad_update` (eq. ``char-rnn-adagrad``);
* :func:`sample`: text drawn from softmax(o_t / temperature) (eq. ``char-rnn-temperature``);
* :func:`train`: the whole loop, with validation bits per character and samples on the way;
* :func:`text_features`, :func:`unit_correlations`, :func:`context_correlation`: what a hidden
  unit tracks, measured against what the current characters alone could tell.

numpy only (no torch). Shapes are batch first: streams (B, N), chunks (B, T), states (B, H).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from bptt import _validate as v
from bptt import rnn

PARAMETER_NAMES = rnn.PARAMETER_NAMES
"""The parameters of the model: ``W_xh`` (H, V), ``W_hh`` (H, H), ``b`` (H,), ``W_hy`` (V, H),
``b_y`` (V,)."""


# --------------------------------------------------------------------------- input checks


def _ids(name: str, ids: object, spec: tuple[str, ...], V: int | None = None) -> np.ndarray:
    """``ids`` as an int64 array of shape ``spec`` with entries in [0, V) (when V is given)."""
    array = np.asarray(ids)
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name}: expected an integer array of character ids of shape "
                        f"{v._spec_text(spec)}, got dtype {array.dtype} with shape {array.shape}")
    if array.ndim != len(spec) or 0 in array.shape:
        raise ValueError(f"{name}: expected a non-empty {len(spec)}-D array of shape "
                         f"{v._spec_text(spec)}, got shape {array.shape}")
    if V is not None and (array.min() < 0 or array.max() >= V):
        raise ValueError(f"{name}: expected ids in [0, {V}) (V = {V}), got values in "
                         f"[{array.min()}, {array.max()}]")
    return array.astype(np.int64, copy=False)


def check_params(params: object) -> tuple[dict[str, np.ndarray], int, int]:
    """``params`` with its vocabulary size V and hidden size H, or a clear error."""
    params = rnn.check_params(params)
    dims: v.Dims = {}
    v.float_array("params['W_xh']", params["W_xh"], ("H", "V"), dims)
    v.float_array("params['W_hh']", params["W_hh"], ("H", "H"), dims)
    v.float_array("params['b']", params["b"], ("H",), dims)
    v.float_array("params['W_hy']", params["W_hy"], ("V", "H"), dims)
    v.float_array("params['b_y']", params["b_y"], ("V",), dims)
    return params, dims["V"][0], dims["H"][0]


def init_params(
    V: int, H: int, *, rng: np.random.Generator | int, dtype: type = np.float64
) -> dict[str, np.ndarray]:
    """Random parameters of a character RNN over V characters with H hidden units.

    :func:`bptt.rnn.init_params` with D = Q = V: W ~ N(0, 1/fan_in), biases 0.
    """
    return rnn.init_params(V, H, V, rng=rng, dtype=dtype)


# --------------------------------------------------------------------------- streams


def batchify(ids: object, B: int) -> np.ndarray:
    """Lay the ids (N_total,) out as B contiguous streams, shape (B, N) with N = N_total // B.

    Row b is the b-th piece of the text; the last N_total mod B ids are dropped. Reading the
    rows chunk by chunk, each chunk continues the one before it in every row.
    """
    ids = _ids("ids", ids, ("N_total",))
    B = v.integer("B", B, minimum=1)
    n = len(ids) // B
    if n < 2:
        raise ValueError(f"ids: expected at least 2 * B = {2 * B} ids for B = {B}, got {len(ids)}")
    return ids[: n * B].reshape(B, n)


def stream_chunks(streams: object, T: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (inputs, targets) chunks of T steps that one pass over ``streams`` (B, N) reads.

    Chunk j is ``inputs = streams[:, jT : (j+1)T]`` and ``targets = streams[:, jT+1 : (j+1)T+1]``
    (each (B, T)): the target of every step is the next character of the same stream, and
    chunk j + 1 starts where chunk j ended, so a state carried between them is the state of
    the text read so far. Only full chunks are returned: floor((N - 1) / T) of them.
    """
    streams = _ids("streams", streams, ("B", "N"))
    T = v.integer("T", T, minimum=1)
    count = (streams.shape[1] - 1) // T
    if count < 1:
        raise ValueError(f"T: expected at most N - 1 = {streams.shape[1] - 1} steps for streams "
                         f"of shape {streams.shape}, got {T}")
    return [(streams[:, j * T : (j + 1) * T], streams[:, j * T + 1 : (j + 1) * T + 1])
            for j in range(count)]


def one_hot(ids: object, V: int, dtype: type = np.float64) -> np.ndarray:
    """x with x[..., i] = 1 where ids == i: ids of any shape S -> (*S, V)."""
    V = v.integer("V", V, minimum=1)
    array = np.asarray(ids)
    ids = _ids("ids", array, tuple(f"n{i}" for i in range(array.ndim)), V)
    return np.eye(V, dtype=dtype)[ids]


# --------------------------------------------------------------------------- one chunk


def chunk_loss_and_gradients(
    inputs: object, targets: object, params: dict[str, np.ndarray], h0: np.ndarray | None = None
) -> tuple[float, dict[str, np.ndarray], np.ndarray]:
    """Forward and BPTT over one chunk, from the carried state h0 (B, H) (None: zeros).

    ``inputs`` and ``targets`` are (B, T) character ids. Returns ``(L, grads, h_T)``: the mean
    cross-entropy L in nats per character, the gradient of every parameter, and the last state
    h_T (B, H), which the next chunk starts from. The gradient stops at h0: the earlier chunks
    are constants here (truncated BPTT, "Truncated BPTT").
    """
    params, V, _ = check_params(params)
    dims: v.Dims = {}
    inputs = _ids("inputs", inputs, ("B", "T"), V)
    v._check_shape("inputs", inputs.shape, ("B", "T"), dims)
    targets = _ids("targets", targets, ("B", "T"), V)
    v._check_shape("targets", targets.shape, ("B", "T"), dims)
    x = one_hot(inputs, V, params["W_xh"].dtype)  # (B, T, V)
    h, cache = rnn.forward(x, h0, params["W_xh"], params["W_hh"], params["b"])
    o = rnn.readout(h, params["W_hy"], params["b_y"])
    loss, do = rnn.cross_entropy_loss(o, targets)
    top = rnn.readout_backward(do, h, params["W_hy"])
    grads = rnn.backward(top.pop("h"), cache)
    grads.update(top)
    return loss, {name: grads[name] for name in PARAMETER_NAMES}, h[:, -1]


# --------------------------------------------------------------------------- the update


def global_norm(grads: dict[str, np.ndarray]) -> float:
    """sqrt of the sum of squares of every entry of every gradient in ``grads``."""
    return math.sqrt(sum(float(np.sum(np.square(g))) for g in grads.values()))


def clip_by_norm(grads: dict[str, np.ndarray], max_norm: float) -> tuple[dict[str, np.ndarray], float]:
    """Rescale all gradients together when their global norm exceeds ``max_norm`` (kappa).

    Equation ``char-rnn-clip``: g <- g * min(1, kappa / ||g||), ||g|| over every parameter at
    once ("Exploding gradients and clipping"). Returns ``(clipped grads, ||g|| before clipping)``;
    the direction of the update never changes.
    """
    max_norm = v.positive_float("max_norm", max_norm)
    norm = global_norm(grads)
    factor = min(1.0, max_norm / norm) if norm > 0 else 1.0
    return {name: g * factor for name, g in grads.items()}, norm


def adagrad_update(
    params: dict[str, np.ndarray],
    grads: dict[str, np.ndarray],
    memory: dict[str, np.ndarray],
    lr: float,
    *,
    eps: float = 1e-8,
) -> None:
    """One Adagrad step, in place (eq. ``char-rnn-adagrad``; Duchi, Hazan and Singer 2011).

    For every entry of every parameter: G <- G + g^2, then theta <- theta - lr g / sqrt(G + eps).
    ``memory`` holds the running sums G (the shapes of ``params``; start from zeros). Each entry
    gets its own step size: lr divided by the root of all the squared gradients it has seen.
    """
    lr = v.positive_float("lr", lr)
    eps = v.positive_float("eps", eps)
    for name, theta in params.items():
        if name not in grads or name not in memory:
            raise KeyError(f"grads, memory: expected an entry for every parameter, missing {name!r}")
        g, G = grads[name], memory[name]
        if g.shape != theta.shape or G.shape != theta.shape:
            raise ValueError(f"grads[{name!r}], memory[{name!r}]: expected shape "
                             f"{theta.shape}, got {g.shape} and {G.shape}")
        G += g * g  # in place: the caller's running sums
        theta -= lr * g / np.sqrt(G + eps)  # in place: the caller's parameters


# --------------------------------------------------------------------------- sampling


def sample(
    params: dict[str, np.ndarray],
    prefix: object,
    length: int,
    *,
    temperature: float = 1.0,
    rng: np.random.Generator | int,
) -> np.ndarray:
    """``length`` character ids drawn one at a time after reading the ids ``prefix``.

    The network reads the prefix (from a zero state) step by step with
    :func:`bptt.rnn.step_forward`; then each next id is drawn from softmax(o_t / temperature)
    (eq. ``char-rnn-temperature``) and fed back as the next input. ``temperature`` < 1
    sharpens the distribution, > 1 flattens it. Returns the drawn ids (length,), without the
    prefix.
    """
    params, V, H = check_params(params)
    prefix = _ids("prefix", prefix, ("P",), V)
    length = v.integer("length", length, minimum=1)
    temperature = v.positive_float("temperature", temperature)
    rng = v.generator("rng", rng)
    W_xh, W_hh, b, W_hy, b_y = (params[name] for name in PARAMETER_NAMES)
    eye = np.eye(V, dtype=W_xh.dtype)
    h = np.zeros((1, H), dtype=W_xh.dtype)
    for c in prefix[:-1]:  # read all but the last prefix character
        h, _ = rnn.step_forward(eye[c][None], h, W_xh, W_hh, b)
    current, drawn = int(prefix[-1]), np.empty(length, dtype=np.int64)
    for i in range(length):
        h, _ = rnn.step_forward(eye[current][None], h, W_xh, W_hh, b)
        o = (h[0] @ W_hy.T + b_y) / temperature  # logits of the next character, tempered
        p = np.exp(o - o.max())
        current = int(rng.choice(V, p=p / p.sum()))
        drawn[i] = current
    return drawn


# --------------------------------------------------------------------------- evaluation


def hidden_states(params: dict[str, np.ndarray], streams: object) -> tuple[np.ndarray, np.ndarray]:
    """States and logits of the model reading ``streams`` (B, N) from zero states.

    Returns ``h`` (B, N - 1, H) and ``o`` (B, N - 1, V): h[:, t] is the state after reading
    streams[:, t], o[:, t] its logits for streams[:, t + 1].
    """
    params, V, _ = check_params(params)
    streams = _ids("streams", streams, ("B", "N"), V)
    if streams.shape[1] < 2:
        raise ValueError(f"streams: expected shape (B, N) with N >= 2, got {streams.shape}")
    x = one_hot(streams[:, :-1], V, params["W_xh"].dtype)
    h, _ = rnn.forward(x, None, params["W_xh"], params["W_hh"], params["b"])
    return h, rnn.readout(h, params["W_hy"], params["b_y"])


def bits_per_char(params: dict[str, np.ndarray], streams: object) -> float:
    """Mean -log2 p(streams[:, t + 1] | streams[:, :t + 1]) over the streams (B, N).

    The same targets as :meth:`bptt.ngram.NGramModel.bits_per_char`: every stream read from a
    zero state, its first character the first context.
    """
    streams = np.asarray(streams)
    _, o = hidden_states(params, streams)
    loss, _ = rnn.cross_entropy_loss(o, streams[:, 1:])
    return loss / math.log(2)


# --------------------------------------------------------------------------- training


@dataclasses.dataclass
class TrainRun:
    """What :func:`train` returns.

    ``params`` (the trained parameters), per update: ``loss_bpc`` (training bits per character of
    the chunk), ``grad_norm`` (global norm before clipping), ``clipped`` (whether it was
    clipped); ``valid`` maps an update count to the validation bits per character then;
    ``samples`` maps an update count to the ids sampled then.
    """

    params: dict[str, np.ndarray]
    loss_bpc: np.ndarray
    grad_norm: np.ndarray
    clipped: np.ndarray
    valid: dict[int, float]
    samples: dict[int, np.ndarray]


def train(
    train_ids: object,
    V: int,
    *,
    H: int,
    B: int,
    T: int,
    updates: int,
    lr: float,
    max_norm: float,
    seed: int,
    valid_streams: object = None,
    eval_at: tuple[int, ...] = (),
    sample_at: tuple[int, ...] = (),
    sample_prefix: object = None,
    sample_length: int = 200,
    temperature: float = 1.0,
    dtype: type = np.float64,
) -> TrainRun:
    """Train a character RNN with truncated BPTT over B streams, clipping and Adagrad.

    The training ids (N_total,) are cut into B streams (:func:`batchify`) and read in chunks of
    T steps (:func:`stream_chunks`); each update is one chunk: forward from the carried state,
    BPTT over the chunk (:func:`chunk_loss_and_gradients`), :func:`clip_by_norm` at ``max_norm``,
    :func:`adagrad_update` with ``lr``. At the end of the streams the next update starts again
    from their beginning with a zero state. After ``u`` updates for u in ``eval_at`` the
    validation bits per character of ``valid_streams`` are recorded, for u in ``sample_at`` a
    sample of ``sample_length`` ids after ``sample_prefix`` (seeded by ``seed`` and u).
    """
    V = v.integer("V", V, minimum=1)
    updates = v.integer("updates", updates, minimum=0)
    chunks = stream_chunks(batchify(_ids("train_ids", train_ids, ("N_total",), V), B), T)
    max_norm = v.positive_float("max_norm", max_norm)
    rng = np.random.default_rng(v.integer("seed", seed, minimum=0))
    params = init_params(V, H, rng=rng, dtype=dtype)
    memory = {name: np.zeros_like(value) for name, value in params.items()}
    if eval_at and valid_streams is None:
        raise ValueError("valid_streams: expected the validation streams (B, N) to evaluate "
                         f"at updates {eval_at}, got None")
    if sample_at and sample_prefix is None:
        raise ValueError(f"sample_prefix: expected ids to start the samples at {sample_at}, got None")
    losses, norms, clipped = np.zeros(updates), np.zeros(updates), np.zeros(updates, dtype=bool)
    valid, samples = {}, {}

    def record(u):
        if u in eval_at:
            valid[u] = bits_per_char(params, valid_streams)
        if u in sample_at:
            samples[u] = sample(params, sample_prefix, sample_length, temperature=temperature,
                                rng=np.random.default_rng([seed, u]))

    record(0)
    h = None
    for u in range(updates):
        j = u % len(chunks)
        if j == 0:
            h = None  # the streams start again: a fresh zero state
        inputs, targets = chunks[j]
        loss, grads, h = chunk_loss_and_gradients(inputs, targets, params, h)
        grads, norms[u] = clip_by_norm(grads, max_norm)
        clipped[u] = norms[u] > max_norm
        adagrad_update(params, grads, memory, lr)
        losses[u] = loss / math.log(2)
        record(u + 1)
    return TrainRun(params, losses, norms, clipped, valid, samples)


# --------------------------------------------------------------------------- what a unit tracks


FEATURES = ("word_position", "column", "indentation", "inside_quotes", "inside_parentheses",
            "indented_line")
"""The measurable properties of the text :func:`text_features` computes, per character."""


def text_features(text: str) -> dict[str, np.ndarray]:
    """For every character of ``text``, properties of where it stands, as float arrays (N,).

    ``word_position``: how many letters the current run of letters has so far (1 for the first
    letter of a word, 0 for a character that is not a letter); ``column``: its position in the
    line (0 for the first character after a newline); ``indentation``: 1 for a space before the
    first other character of its line; ``inside_quotes``: 1 from an opening double quote to its
    closing one on the same line (both included); ``inside_parentheses``: 1 inside at least one
    pair of round brackets (both included; an unmatched closer is ignored, the depth resets at
    an empty line); ``indented_line``: 1 on a line that begins with a space (code examples,
    definition bodies).
    """
    if not isinstance(text, str) or not text:
        raise ValueError(f"text: expected a non-empty string, got {text!r:.40}")
    n = len(text)
    out = {name: np.zeros(n) for name in FEATURES}
    word, col, in_quote, depth, leading, previous = 0, 0, False, 0, True, ""
    line_indented = text[0] == " "
    for i, ch in enumerate(text):
        if ch == "\n":
            in_quote = False
            if previous == "\n":
                depth = 0
        word = word + 1 if ch.isalpha() else 0
        out["word_position"][i] = word
        out["column"][i] = col
        leading = leading and ch == " "
        out["indentation"][i] = float(leading)
        if ch == '"':
            out["inside_quotes"][i] = 1.0
            in_quote = not in_quote
        else:
            out["inside_quotes"][i] = float(in_quote)
        depth += ch == "("
        out["inside_parentheses"][i] = float(depth > 0)
        depth -= ch == ")" and depth > 0
        out["indented_line"][i] = float(line_indented)
        if ch == "\n":
            col, leading, line_indented = 0, True, i + 1 < n and text[i + 1] == " "
        else:
            col += 1
        previous = ch
    return out


def residual_feature(ids: object, feature: object, fit_ids: object, fit_feature: object) -> np.ndarray:
    """The part of a feature that the current character does not tell: f_t - E[f | chi_t].

    E[f | c] is the mean of ``fit_feature`` over the positions of ``fit_ids`` that hold the
    character c (the overall mean for a character never seen there); ids, feature (N,) and
    fit_ids, fit_feature (M,) -> (N,). On the fitting text, no function of the current
    character correlates with the residual, so a unit that does carries memory.
    """
    ids, feature = _id_feature("ids", ids, "feature", feature)
    fit_ids, fit_feature = _id_feature("fit_ids", fit_ids, "fit_feature", fit_feature)
    V = int(max(ids.max(), fit_ids.max())) + 1
    counts = np.bincount(fit_ids, minlength=V)
    sums = np.bincount(fit_ids, weights=fit_feature, minlength=V)
    means = np.where(counts > 0, sums / np.maximum(counts, 1), fit_feature.mean())
    return feature - means[ids]


def _id_feature(id_name, ids, feature_name, feature) -> tuple[np.ndarray, np.ndarray]:
    ids = _ids(id_name, ids, ("N",))
    feature = v.float_array(feature_name, np.asarray(feature, dtype=float), ("N",),
                            v.bind(id_name, ids.shape, ("N",)))
    return ids, feature


def unit_correlations(h: object, feature: object) -> np.ndarray:
    """Pearson correlation of every hidden unit with a feature: h (N, H), feature (N,) -> (H,).

    A unit (or a feature) that never changes has correlation 0.
    """
    dims: v.Dims = {}
    h = v.float_array("h", h, ("N", "H"), dims)
    feature = v.float_array("feature", np.asarray(feature, dtype=float), ("N",), dims)
    hc = h - h.mean(axis=0)
    fc = feature - feature.mean()
    scale = np.sqrt((hc * hc).sum(axis=0) * (fc @ fc))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (fc @ hc) / scale
    return np.where(scale > 0, r, 0.0)


def context_correlation(
    train_ids: object, train_feature: object, test_ids: object, test_feature: object,
    *, order: int = 1,
) -> float:
    """The correlation on test text of the best memoryless guess of a feature from the last
    ``order`` characters (the current one included).

    The guess for a context is the mean of the feature over the training positions with that
    context (the training mean for a context never seen); its Pearson correlation with the
    feature on the test text is what a unit must beat to show that it carries more than the
    last ``order`` characters.
    """
    order = v.integer("order", order, minimum=1)
    train_ids, train_feature = _id_feature("train_ids", train_ids, "train_feature", train_feature)
    test_ids, test_feature = _id_feature("test_ids", test_ids, "test_feature", test_feature)
    V = int(max(train_ids.max(), test_ids.max())) + 1

    def keys(ids):
        key = ids.copy()
        for k in range(1, order):  # older characters as higher digits; none before the start
            key = key * (V + 1) + np.concatenate([np.full(k, V), ids[:-k]])
        return key

    train_keys, test_keys = keys(train_ids), keys(test_ids)
    unique, inverse = np.unique(train_keys, return_inverse=True)
    means = np.bincount(inverse, weights=train_feature) / np.bincount(inverse)
    where = np.minimum(np.searchsorted(unique, test_keys), len(unique) - 1)
    seen = unique[where] == test_keys
    guess = np.where(seen, means[where], train_feature.mean())
    return float(unit_correlations(guess[:, None], test_feature)[0])



def strongest_unit(correlations: dict[str, np.ndarray]) -> tuple[str, int, float]:
    """The (feature, unit, r) with the largest |r| in ``correlations`` {feature: (H,)}.

    The search runs over every feature and every unit at once, so the unit is found by the
    numbers, not chosen by eye; ties go to the first feature and the lowest unit.
    """
    if not correlations:
        raise ValueError("correlations: expected at least one feature, got none")
    best = None
    for name, r in correlations.items():
        r = v.float_array(f"correlations[{name!r}]", np.asarray(r, dtype=float), ("H",))
        j = int(np.argmax(np.abs(r)))
        if best is None or abs(r[j]) > abs(best[2]):
            best = (str(name), j, float(r[j]))
    return best
