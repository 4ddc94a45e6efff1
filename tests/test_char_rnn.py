"""bptt.char_rnn: streams, the chunk gradient, clipping, Adagrad, the sampler, the features."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bptt import char_rnn, gradcheck


def params(V=5, H=4, seed=0):
    return char_rnn.init_params(V, H, rng=seed)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(4, 200), B=st.integers(1, 6), T=st.integers(1, 10))
def test_stream_chunks_cover_each_stream_in_order(n, B, T):
    ids = np.arange(n)
    if n // B < 2:
        with pytest.raises(ValueError, match="ids: expected at least 2 \\* B"):
            char_rnn.batchify(ids, B)
        return
    streams = char_rnn.batchify(ids, B)
    assert streams.shape == (B, n // B)
    np.testing.assert_array_equal(streams.ravel(), ids[: B * (n // B)])
    if T > streams.shape[1] - 1:
        with pytest.raises(ValueError, match="T: expected at most N - 1"):
            char_rnn.stream_chunks(streams, T)
        return
    chunks = char_rnn.stream_chunks(streams, T)
    assert len(chunks) == (streams.shape[1] - 1) // T
    inputs = np.concatenate([x for x, _ in chunks], axis=1)
    targets = np.concatenate([y for _, y in chunks], axis=1)
    np.testing.assert_array_equal(inputs, streams[:, : inputs.shape[1]])
    np.testing.assert_array_equal(targets, streams[:, 1 : inputs.shape[1] + 1])
    assert all(x.shape == (B, T) == y.shape for x, y in chunks)


def test_chunk_gradients_agree_with_finite_differences_from_a_carried_state():
    p = params()
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 5, (2, 4)), rng.integers(0, 5, (2, 4))
    h0 = rng.uniform(-0.5, 0.5, (2, 4))
    _, grads, h_T = char_rnn.chunk_loss_and_gradients(x, y, p, h0)
    numeric = gradcheck.numerical_gradients(
        lambda q: char_rnn.chunk_loss_and_gradients(x, y, q, h0)[0], p)
    for name in p:
        assert gradcheck.relative_error(grads[name], numeric[name]) < 1e-7, name
    assert h_T.shape == (2, 4)


def test_clip_by_norm_rescales_together_and_leaves_small_gradients():
    grads = {"a": np.array([3.0]), "b": np.array([[4.0]])}
    clipped, norm = char_rnn.clip_by_norm(grads, 1.0)
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose(clipped["a"], [0.6])
    np.testing.assert_allclose(clipped["b"], [[0.8]])
    same, _ = char_rnn.clip_by_norm(grads, 10.0)
    np.testing.assert_array_equal(same["a"], grads["a"])


def test_adagrad_matches_a_hand_computation_over_two_steps():
    theta = {"w": np.array([1.0, -1.0])}
    memory = {"w": np.zeros(2)}
    char_rnn.adagrad_update(theta, {"w": np.array([2.0, 0.5])}, memory, 0.1, eps=1e-8)
    np.testing.assert_allclose(memory["w"], [4.0, 0.25])
    np.testing.assert_allclose(theta["w"], [1.0 - 0.1, -1.0 - 0.1], rtol=1e-7)
    char_rnn.adagrad_update(theta, {"w": np.array([1.0, 0.5])}, memory, 0.1, eps=1e-8)
    np.testing.assert_allclose(memory["w"], [5.0, 0.5])
    np.testing.assert_allclose(theta["w"], [0.9 - 0.1 / np.sqrt(5.0), -1.1 - 0.05 / np.sqrt(0.5)],
                               rtol=1e-7)


def test_adagrad_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="grads\\['w'\\].*expected shape \\(2,\\)"):
        char_rnn.adagrad_update({"w": np.zeros(2)}, {"w": np.zeros(3)}, {"w": np.zeros(2)}, 0.1)


def test_sampler_draws_from_the_tempered_softmax():
    # With W_hh = 0 and b = 0 every step sees the same logits for the same input: the first
    # drawn characters of many samples follow softmax(o / temperature).
    V, H = 4, 3
    p = params(V, H)
    p["W_hh"][:] = 0.0
    p["b_y"][:] = [0.0, 1.0, 2.0, -1.0]
    h = np.tanh(p["W_xh"][:, 2])
    logits = p["W_hy"] @ h + p["b_y"]
    for temperature in (0.5, 2.0):
        rng = np.random.default_rng(0)
        first = np.array([char_rnn.sample(p, [2], 1, temperature=temperature, rng=rng)[0]
                          for _ in range(4000)])
        expected = np.exp(logits / temperature) / np.exp(logits / temperature).sum()
        observed = np.bincount(first, minlength=V) / len(first)
        np.testing.assert_allclose(observed, expected, atol=0.03)


def test_sampler_is_reproducible_and_validates():
    p = params()
    a = char_rnn.sample(p, [0, 1], 20, temperature=1.0, rng=3)
    b = char_rnn.sample(p, [0, 1], 20, temperature=1.0, rng=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (20,) and a.min() >= 0 and a.max() < 5
    with pytest.raises(ValueError, match="temperature: expected a finite number > 0, got 0"):
        char_rnn.sample(p, [0], 5, temperature=0, rng=0)
    with pytest.raises(ValueError, match="prefix: expected ids in \\[0, 5\\)"):
        char_rnn.sample(p, [7], 5, rng=0)
    with pytest.raises(TypeError, match="prefix: expected an integer array"):
        char_rnn.sample(p, [0.5], 5, rng=0)


def test_inputs_are_validated_with_the_argument_the_expected_and_the_received():
    p = params()
    with pytest.raises(ValueError, match="targets: expected shape \\(B, T\\) with B = 2"):
        char_rnn.chunk_loss_and_gradients(np.zeros((2, 3), int), np.zeros((3, 3), int), p)
    with pytest.raises(ValueError, match="inputs: expected ids in \\[0, 5\\).*got values in \\[0, 9\\]"):
        char_rnn.chunk_loss_and_gradients(np.array([[0, 9]]), np.array([[0, 1]]), p)
    with pytest.raises(TypeError, match="params: expected a dict"):
        char_rnn.sample({"W_xh": 1}, [0], 3, rng=0)
    with pytest.raises(ValueError, match="params\\['W_hy'\\]: expected shape \\(V, H\\)"):
        char_rnn.sample({**p, "W_hy": np.zeros((6, 4))}, [0], 3, rng=0)
    with pytest.raises(ValueError, match="max_norm: expected a finite number > 0"):
        char_rnn.clip_by_norm({"a": np.ones(2)}, -1.0)


def test_bits_per_char_of_zero_weights_is_log2_V():
    p = {name: np.zeros_like(value) for name, value in params(V=8).items()}
    assert char_rnn.bits_per_char(p, np.arange(16).reshape(2, 8) % 8) == pytest.approx(3.0)


def test_training_lowers_the_loss_on_a_repeating_text():
    ids = np.tile(np.arange(5), 200)
    run = char_rnn.train(ids, 5, H=8, B=4, T=10, updates=60, lr=0.1, max_norm=5.0, seed=0,
                         valid_streams=char_rnn.batchify(ids, 2), eval_at=(0, 60),
                         sample_at=(60,), sample_prefix=[0], sample_length=10)
    assert run.valid[60] < 0.5 * run.valid[0]
    assert run.samples[60].shape == (10,)
    assert run.loss_bpc.shape == run.grad_norm.shape == run.clipped.shape == (60,)


def test_text_features_on_a_small_text():
    f = char_rnn.text_features('ab "c" (d)\n  ef')
    np.testing.assert_array_equal(f["word_position"], [1, 2, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2])
    np.testing.assert_array_equal(f["column"], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 1, 2, 3])
    np.testing.assert_array_equal(f["inside_quotes"], [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(f["inside_parentheses"], [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(f["indentation"], [0] * 11 + [1, 1, 0, 0])
    np.testing.assert_array_equal(f["indented_line"], [0] * 11 + [1, 1, 1, 1])


def test_residual_removes_what_the_current_character_tells():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 4, 500)
    feature = ids * 2.0 + rng.standard_normal(500) * 0.01
    residual = char_rnn.residual_feature(ids, feature, ids, feature)
    assert abs(char_rnn.context_correlation(ids, residual, ids, residual)) < 0.1
    assert char_rnn.context_correlation(ids, feature, ids, feature) > 0.99


def test_unit_correlations_and_the_strongest_unit():
    rng = np.random.default_rng(0)
    feature = rng.standard_normal(300)
    h = np.stack([rng.standard_normal(300), -feature, np.zeros(300)], axis=1)
    r = char_rnn.unit_correlations(h, feature)
    assert r[1] == pytest.approx(-1.0) and r[2] == 0.0
    assert char_rnn.strongest_unit({"f": r, "g": r / 2}) == ("f", 1, pytest.approx(-1.0))
