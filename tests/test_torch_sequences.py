"""bptt.torch.sequences: masks, padded batches, packing, the seed axis and input checks."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from bptt.torch import sequences as sq

F64 = torch.float64


def test_length_mask_and_last_real_state():
    mask = sq.length_mask(torch.tensor([1, 3, 2]), 3)
    assert mask.tolist() == [[True, False, False], [True, True, True], [True, True, False]]
    h = torch.arange(2 * 3 * 3 * 1, dtype=F64).reshape(2, 3, 3, 1)
    out = sq.last_real_state(h, torch.tensor([[1, 3, 2], [3, 3, 1]]))
    assert out[..., 0].tolist() == [[0.0, 5.0, 7.0], [11.0, 14.0, 15.0]]


@settings(max_examples=25, deadline=None)
@given(lengths=st.lists(st.integers(1, 7), min_size=1, max_size=5), D=st.integers(1, 3),
       H=st.integers(1, 4), seed=st.integers(0, 1000))
def test_masked_padded_batch_equals_sequences_one_by_one(lengths, D, H, seed):
    gen = torch.Generator().manual_seed(seed)
    xs = [torch.randn(n, D, generator=gen, dtype=F64) for n in lengths]
    ys = [torch.randint(0, 3, (n,), generator=gen) for n in lengths]
    x, lens = sq.pad_batch(xs)
    y, _ = sq.pad_batch(ys, pad_value=-1)
    assert lens.tolist() == lengths and x.shape == (len(lengths), max(lengths), D)
    model = sq.SeedUniRNN([seed], D, H, 3)
    masked = sq.masked_mean(sq.step_cross_entropy(model.logits(x[None]), y[None]), lens)[0]
    total = sum(sq.step_cross_entropy(model.logits(a[None, None]), b[None, None]).sum()
                for a, b in zip(xs, ys)) / sum(lengths)
    torch.testing.assert_close(masked, total, rtol=1e-12, atol=1e-14)
    g1 = torch.autograd.grad(masked, model.parameters())
    g2 = torch.autograd.grad(total, model.parameters())
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)
    # the state frozen by the mask is the state at each sequence's last real step
    h = model.states(x[None])
    torch.testing.assert_close(model.states(x[None], lens)[0, :, -1], sq.last_real_state(h, lens)[0])


@settings(max_examples=15, deadline=None)
@given(lengths=st.lists(st.integers(1, 6), min_size=1, max_size=4), seed=st.integers(0, 1000))
def test_packing_gives_the_masked_gradient_and_the_last_real_state(lengths, seed):
    torch.manual_seed(seed)
    layer = torch.nn.RNN(2, 3, batch_first=True, dtype=F64)
    gen = torch.Generator().manual_seed(seed)
    x, lens = sq.pad_batch([torch.randn(n, 2, generator=gen, dtype=F64) for n in lengths])
    w = torch.randn(3, generator=gen, dtype=F64)
    mask = sq.length_mask(lens, x.shape[1])

    def run(packed):
        if packed:
            out, h_n = layer(pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False))
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        else:
            out, h_n = layer(x)
        loss = sq.masked_mean((out @ w) ** 2, lens)
        return loss, out, h_n[0]

    (lp, op, hp), (lq, oq, _) = run(True), run(False)
    torch.testing.assert_close(op[mask], oq[mask])
    for a, b in zip(torch.autograd.grad(lp, layer.parameters()),
                    torch.autograd.grad(lq, layer.parameters())):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)
    torch.testing.assert_close(sq.last_real_state(oq, lens), hp)


def test_seed_axis_members_are_independent_runs():
    """Member s of a stack is the model with seed s alone, trained on its own data."""
    sym, lens = sq.variable_length_task([3, 7], 40, 6, 3, offset=11)
    x = sq.one_hot(sym, 3)

    def loss(model, x, sym, lens):
        return sq.masked_mean(sq.step_cross_entropy(model.logits(x, lens), sq.shift_right(sym).masked_fill(
            ~sq.length_mask(lens, 6), -1)), lens)

    pair = sq.SeedUniRNN([3, 7], 3, 4, 3)
    alone = sq.SeedUniRNN([7], 3, 4, 3)
    sq.train_steps(pair, [(x[:, i:i + 8], sym[:, i:i + 8], lens[:, i:i + 8]) for i in (0, 8, 16)],
                   loss_fn=loss)
    sq.train_steps(alone, [(x[1:, i:i + 8], sym[1:, i:i + 8], lens[1:, i:i + 8]) for i in (0, 8, 16)],
                   loss_fn=loss)
    for name in pair.params:
        torch.testing.assert_close(pair.params[name][1], alone.params[name][0])


def test_bidirectional_and_unidirectional_sizes():
    assert sq.parameter_count(sq.SeedUniRNN([0], 3, 21, 3)) == 591
    assert sq.parameter_count(sq.SeedBiRNN([0, 1], 3, 14, 3)) == 591
    o = sq.SeedBiRNN([0, 1], 3, 4, 2).logits(torch.zeros(2, 5, 6, 3, dtype=F64))
    assert o.shape == (2, 5, 6, 2)


def test_feedback_net_free_running_and_trust():
    x, y = sq.feedback_task([0], 4, 6, 3, stay=0.9, noise=0.5)
    net = sq.OutputFeedbackNet([0], 3, 5, 3)
    fed = net.feed_own(x)
    assert fed[..., 0].eq(-1).all() and fed.shape == y.shape
    assert net.feed_own(x, y, own=0.0).equal(sq.shift_right(y))  # own = 0: teacher forcing
    trust = sq.fed_symbol_trust(net)
    assert trust.shape == (1,) and 0 < float(trust) < 1


def test_exact_opponents():
    x, y = sq.feedback_task([0], 2000, 8, 3, stay=0.9, noise=0.8)
    post, filt = sq.observation_posterior(x, 0.8), sq.chain_filter(x, 0.8, 0.9)
    torch.testing.assert_close(post.sum(-1), torch.ones_like(post[..., 0]))
    torch.testing.assert_close(filt[..., 0, :], post[..., 0, :])  # nothing before step 1
    nll = lambda p: float(-torch.log(p.gather(-1, y[..., None])).mean())
    assert nll(filt) < nll(post)


def test_input_validation_names_the_argument():
    with pytest.raises(ValueError, match="lengths: expected every length in 1..T"):
        sq.length_mask(torch.tensor([0, 2]), 3)
    with pytest.raises(ValueError, match="lengths: expected every length in 1..T"):
        sq.masked_mean(torch.zeros(2, 3), torch.tensor([4, 1]))
    with pytest.raises(TypeError, match="lengths: expected integers"):
        sq.length_mask(torch.tensor([1.0, 2.0]), 3)
    with pytest.raises(ValueError, match=r"lengths: expected shape \(B,\)"):
        sq.last_real_state(torch.zeros(2, 3, 4), torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="sequences: expected at least one"):
        sq.pad_batch([])
    with pytest.raises(ValueError, match=r"sequences\[1\]: expected trailing shape"):
        sq.pad_batch([torch.zeros(2, 3), torch.zeros(2, 4)])
    with pytest.raises(ValueError, match=r"x: expected shape \(S, B, T, D\)"):
        sq.SeedRNN([0, 1], 3, 4, 2).states(torch.zeros(1, 2, 3, 3, dtype=F64))
    with pytest.raises(TypeError, match="x: expected a floating-point"):
        sq.SeedRNN([0], 3, 4, 2).states(torch.zeros(1, 2, 3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="final"):
        sq.SeedRNN([0], 3, 4, 2).classify(torch.zeros(1, 2, 3, 3, dtype=F64), [1, 2], final="end")
    with pytest.raises(ValueError, match="symbols: expected ids"):
        sq.one_hot(torch.tensor([0, 5]), 3)
    with pytest.raises(ValueError, match=r"y: expected shape \(S, B, T\)"):
        sq.OutputFeedbackNet([0], 3, 4, 3).teacher_forced(torch.zeros(1, 2, 5, 3, dtype=F64),
                                                          torch.zeros(1, 2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="y: the true symbols"):
        sq.OutputFeedbackNet([0], 3, 4, 3).feed_own(torch.zeros(1, 2, 5, 3, dtype=F64), own=0.5)
    with pytest.raises(ValueError, match=r"own: expected a number in \[0, 1\]"):
        sq.OutputFeedbackNet([0], 3, 4, 3).feed_own(torch.zeros(1, 2, 5, 3, dtype=F64), own=1.5)
    with pytest.raises(ValueError, match="seeds: expected at least one"):
        sq.SeedBiRNN([], 3, 4, 3)
    with pytest.raises(ValueError, match="min_length"):
        sq.variable_length_batch(2, 3, 2, min_length=4, generator=torch.Generator())
