"""bptt.scan and bptt.torch.scan against the sequential recursion and torch autograd."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bptt import scan

METHODS = ("blelloch", "hillis-steele")
shapes = st.tuples(st.integers(1, 3), st.integers(1, 70), st.integers(1, 4))


def _problem(shape, seed):
    rng = np.random.default_rng(seed)
    lam = rng.uniform(-1.1, 1.1, shape)
    u = rng.standard_normal(shape)
    h0 = rng.standard_normal((shape[0], shape[2]))
    return lam, u, h0, rng


@given(shape=shapes, seed=st.integers(0, 2**16), method=st.sampled_from(METHODS))
def test_scan_equals_loop(shape, seed, method):
    lam, u, h0, _ = _problem(shape, seed)
    h_loop = scan.sequential(lam, u, h0)
    h_scan, count = scan.scan(lam, u, h0, method=method)
    np.testing.assert_allclose(h_scan, h_loop, rtol=1e-12, atol=1e-12)
    assert count == scan.counts(shape[1], method)
    assert count.rounds_per_sweep == (math.ceil(math.log2(shape[1])) if shape[1] > 1 else 0)


@given(shape=shapes, seed=st.integers(0, 2**16), method=st.sampled_from(METHODS))
def test_backward_equals_torch_autograd(shape, seed, method):
    torch = pytest.importorskip("torch")
    from bptt.torch import scan as tscan

    lam, u, h0, rng = _problem(shape, seed)
    dh = rng.standard_normal(shape)
    h = scan.sequential(lam, u, h0)
    ours = scan.backward(dh, lam, h, h0, method=method)
    tl, tu, th0 = (torch.tensor(x, requires_grad=True) for x in (lam, u, h0))
    out = tscan.sequential(tl, tu, th0)
    grads = torch.autograd.grad((out * torch.tensor(dh)).sum(), (tl, tu, th0))
    for key, ref in zip(("lam", "u", "h0"), grads):
        np.testing.assert_allclose(ours[key], ref.numpy(), rtol=1e-12, atol=1e-12, err_msg=key)


@given(shape=shapes, seed=st.integers(0, 2**16))
def test_torch_scan_and_its_backward(shape, seed):
    torch = pytest.importorskip("torch")
    from bptt.torch import scan as tscan

    lam, u, h0, rng = _problem(shape, seed)
    dh = torch.tensor(rng.standard_normal(shape))
    leaves = [torch.tensor(x, requires_grad=True) for x in (lam, u, h0)]
    ref = tscan.sequential(*leaves)
    ref_grads = torch.autograd.grad((ref * dh).sum(), leaves)
    for fn in (tscan.hillis_steele, tscan.linear_recurrence):
        out = fn(*leaves)
        grads = torch.autograd.grad((out * dh).sum(), leaves)
        torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
        for g, r in zip(grads, ref_grads):
            torch.testing.assert_close(g, r, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ref.detach().numpy(), scan.sequential(lam, u, h0), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("steps", [1, 2, 3, 4, 5, 1000, 1024, 1025])
def test_counts(steps):
    levels = math.ceil(math.log2(steps)) if steps > 1 else 0
    blelloch = scan.counts(steps, "blelloch")
    assert blelloch.rounds_per_sweep == levels
    assert blelloch.rounds == 2 * levels + 1
    assert blelloch.combines == 2 * (2**levels - 1) + steps  # O(T) work
    hs = scan.counts(steps, "hillis-steele")
    assert hs.rounds == levels and hs.combines == sum(steps - 2**d for d in range(levels))
    assert scan.counts(steps, "sequential") == (steps, steps, steps)


def test_counts_at_1024():
    assert scan.counts(1024).rounds_per_sweep == 10


def test_validation():
    with pytest.raises(ValueError, match="u"):
        scan.scan(np.ones((1, 3, 2)), np.ones((1, 4, 2)))
    with pytest.raises(ValueError, match="method"):
        scan.scan(np.ones((1, 3, 2)), np.ones((1, 3, 2)), method="nope")
    with pytest.raises(ValueError, match="h0"):
        scan.scan(np.ones((1, 3, 2)), np.ones((1, 3, 2)), np.ones((2, 2)))
    with pytest.raises(TypeError, match="lam"):
        scan.sequential(np.ones((1, 3, 2), dtype=int), np.ones((1, 3, 2)))
