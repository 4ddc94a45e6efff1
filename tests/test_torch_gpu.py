"""bptt.torch on a CUDA GPU (skipped without one): cuDNN against the explicit loop, training,
and the CUDA memory peak."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch_helpers import F64, TOL, RecordingSGD, max_rel, randn, rel

from bptt.torch import CELLS, SequenceRegressor, cuda_peak_bytes, default_device, train_tbptt

pytestmark = pytest.mark.gpu


def test_default_device_is_the_gpu(monkeypatch):
    monkeypatch.delenv("BPTT_DEVICE", raising=False)
    assert default_device().type == "cuda"


@pytest.mark.parametrize("cell", CELLS)
def test_cudnn_and_explicit_loop_agree_in_float64(cell):
    model = SequenceRegressor(3, 16, 2, readout="all", cell=cell, dtype=F64, device="cuda")
    x = randn(4, 20, 3, seed=1).cuda().requires_grad_()
    grads = []
    for fused in (True, False):
        model.rnn.fused = fused
        out, _ = model(x)
        loss = (out.sin()).sum()
        grads.append((out.detach(), torch.autograd.grad(loss, [*model.parameters(), x])))
    assert rel(grads[0][0], grads[1][0]) <= TOL
    assert max_rel(list(grads[0][1]), list(grads[1][1])) <= TOL


def test_tbptt_on_the_gpu_matches_the_cpu():
    updates = []
    for device in ("cpu", "cuda"):
        model = SequenceRegressor(2, 8, 1, readout="all", cell="lstm", dtype=F64, device=device)
        x, y = randn(3, 23, 2, seed=2).to(device), randn(3, 23, 1, seed=3).to(device)
        optimizer = RecordingSGD(model.parameters(), lr=0.1)
        train_tbptt(
            model,
            x,
            y,
            k1=5,
            k2=7,
            optimizer=optimizer,
            loss_fn=F.mse_loss,
            clip_norm=1.0,
            progress=False,
        )
        updates.append([g for grads in optimizer.grads for g in grads])
    assert max_rel(updates[0], updates[1]) <= 1e-9


def _peak(model, T):
    x = torch.randn(32, T, 2, device="cuda")
    return cuda_peak_bytes(lambda: model(x)[0].sum().backward(), "cuda")


def test_cuda_peak_grows_with_T():
    model = SequenceRegressor(2, 64, 1, readout="all", cell="lstm", device="cuda")
    small, large = _peak(model, 100), _peak(model, 400)
    assert 0 < small < large
