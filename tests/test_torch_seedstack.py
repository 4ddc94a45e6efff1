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
