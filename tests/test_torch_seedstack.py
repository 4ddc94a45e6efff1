"""bptt.torch.models.SeedStack trains S seeds exactly as S separate runs would."""

from __future__ import annotations

import pytest
import torch

from bptt.torch.models import SeedStack, SequenceRegressor


@pytest.mark.parametrize("cell, options", [("rnn", {}), ("rnn", {"init": "orthogonal"}),
                                           ("lstm", {"forget_bias": 1.0}), ("gru", {})])
def test_stack_equals_separate_runs(cell, options):
    seeds = (3, 5, 7)
    stack = SeedStack(seeds, 2, 4, cell=cell, dtype=torch.float64, **options)
    singles = [SequenceRegressor(2, 4, cell=cell, seed=s, dtype=torch.float64, **options) for s in seeds]
    for s, model in enumerate(singles):  # unstack gives the seed's own initial model back
        for p, q in zip(stack.unstack(s).parameters(), model.parameters()):
            torch.testing.assert_close(p, q, rtol=0, atol=0)
    opt = torch.optim.Adam(stack.parameters(), lr=0.01)
    opts = [torch.optim.Adam(m.parameters(), lr=0.01) for m in singles]
    g = torch.Generator().manual_seed(0)
    for _ in range(4):
        xs = [torch.randn(6, 5, 2, generator=g, dtype=torch.float64) for _ in seeds]
        ys = [torch.randn(6, 1, generator=g, dtype=torch.float64) for _ in seeds]
        out, _ = stack(stack.stack_inputs(xs))
        assert out.shape == (6, 3, 1)
        loss = sum(((out[:, s] - ys[s]) ** 2).mean() for s in range(len(seeds)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        for model, o, x, y in zip(singles, opts, xs, ys):
            single_loss = ((model(x)[0] - y) ** 2).mean()
            o.zero_grad()
            single_loss.backward()
            o.step()
    for s, model in enumerate(singles):
        for p, q in zip(stack.unstack(s).parameters(), model.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)


def test_bad_arguments():
    with pytest.raises(ValueError, match="seeds"):
        SeedStack((), 2, 4)
    with pytest.raises(ValueError, match="layer_norm"):
        SeedStack((0, 1), 2, 4, layer_norm=True)
    stack = SeedStack((0, 1), 2, 4)
    with pytest.raises(ValueError, match="xs"):
        stack.stack_inputs([torch.zeros(1, 2, 2)])
    with pytest.raises(ValueError, match="s:"):
        stack.unstack(2)


# ------------------------------------------------------------------ CharLMSeedStack
CHARLM_VARIANTS = [("rnn", {}), ("rnn", {"init": "orthogonal"}), ("rnn", {"init": "identity"}),
                   ("rnn", {"layer_norm": True, "fused": False}), ("gru", {}), ("lstm", {})]


@pytest.mark.parametrize("cell, options", CHARLM_VARIANTS)
def test_charlm_stack_equals_separate_runs(cell, options):
    from bptt.torch.models import CharLM, CharLMSeedStack

    seeds, V = (2, 4, 9), 5
    stack = CharLMSeedStack(seeds, V, 4, embedding_dim=3, cell=cell, dtype=torch.float64, **options)
    singles = [CharLM(V, 4, embedding_dim=3, cell=cell, seed=s, dtype=torch.float64, **options) for s in seeds]
    for s, model in enumerate(singles):
        for p, q in zip(stack.unstack(s).parameters(), model.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=0, atol=0)
    opt = torch.optim.Adam(stack.parameters(), lr=0.02)
    opts = [torch.optim.Adam(m.parameters(), lr=0.02) for m in singles]
    g = torch.Generator().manual_seed(1)
    for _ in range(4):
        xs = [torch.randint(V, (6, 7), generator=g) for _ in seeds]
        ys = [torch.randint(V, (6, 7), generator=g) for _ in seeds]
        logits, state = stack(stack.stack_inputs(xs))
        assert logits.shape == (6, 7, 3, V)
        assert (state[0] if cell == "lstm" else state).shape == (6, 3 * 4)
        loss = sum(torch.nn.functional.cross_entropy(logits[:, :, s].transpose(1, 2), ys[s])
                   for s in range(len(seeds)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        for model, o, x, y in zip(singles, opts, xs, ys, strict=True):
            single = torch.nn.functional.cross_entropy(model(x)[0].transpose(1, 2), y)
            o.zero_grad()
            single.backward()
            o.step()
    for s, model in enumerate(singles):
        for p, q in zip(stack.unstack(s).parameters(), model.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)


def test_charlm_stack_parts_and_bad_arguments():
    from bptt.torch.models import CharLMSeedStack

    stack = CharLMSeedStack((0, 1), 4, 3, embedding_dim=2, cell="rnn", dtype=torch.float64)
    tokens = stack.stack_inputs([torch.zeros(2, 5, dtype=torch.long), torch.ones(2, 5, dtype=torch.long)])
    assert tokens.shape == (2, 5, 2)
    hidden, _ = stack.rnn(stack.embed(tokens))
    torch.testing.assert_close(stack.read(hidden), stack(tokens)[0], rtol=0, atol=0)
    # the block-diagonal weights stay block-diagonal through training
    stack(tokens)[0].sum().backward()
    assert stack.rnn.core.weight_hh_l0.grad[:3, 3:].abs().max() == 0
    with pytest.raises(ValueError, match="seeds"):
        CharLMSeedStack((), 4, 3)
    with pytest.raises(ValueError, match="tokens"):
        stack.stack_inputs([tokens[..., 0]])
    with pytest.raises(ValueError, match="tokens"):
        stack.embed(tokens[..., :1])
    with pytest.raises(ValueError, match="tokens"):
        stack.embed(tokens + 4)  # ids beyond the vocabulary
    with pytest.raises(ValueError, match="s:"):
        stack.unstack(2)


def test_grouped_layer_norm():
    from bptt.torch.models import GroupedLayerNorm

    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 5, 8, generator=g, dtype=torch.float64)
    grouped = GroupedLayerNorm(2, 4, dtype=torch.float64)
    plain = [torch.nn.LayerNorm(4, dtype=torch.float64) for _ in range(2)]
    with torch.no_grad():
        grouped.weight.uniform_(0.5, 1.5, generator=g)
        grouped.bias.uniform_(-1, 1, generator=g)
        for k, norm in enumerate(plain):
            norm.weight.copy_(grouped.weight[4 * k: 4 * (k + 1)])
            norm.bias.copy_(grouped.bias[4 * k: 4 * (k + 1)])
    expected = torch.cat([norm(a[..., 4 * k: 4 * (k + 1)]) for k, norm in enumerate(plain)], dim=-1)
    torch.testing.assert_close(grouped(a), expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="a:"):
        grouped(a[..., :6])
    with pytest.raises(ValueError, match="groups"):
        GroupedLayerNorm(0, 4)
