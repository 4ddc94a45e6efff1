"""bptt.torch.device and .progress: the one device choice and the progress-bar switch."""

from __future__ import annotations

import pytest
import torch

from bptt.torch import default_device, progress_bar, progress_enabled, resolve_device

HAS_CUDA = torch.cuda.is_available()


def test_default_device_is_cuda_when_available(monkeypatch):
    monkeypatch.delenv("BPTT_DEVICE", raising=False)
    assert default_device().type == ("cuda" if HAS_CUDA else "cpu")
    monkeypatch.setenv("BPTT_DEVICE", "auto")
    assert default_device().type == ("cuda" if HAS_CUDA else "cpu")


def test_environment_variable_overrides_and_is_validated(monkeypatch):
    monkeypatch.setenv("BPTT_DEVICE", " CPU ")
    assert default_device() == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    monkeypatch.setenv("BPTT_DEVICE", "gpu")
    with pytest.raises(
        ValueError,
        match="environment variable BPTT_DEVICE: expected 'auto', "
        "'cpu', 'cuda' or 'cuda:N', got 'gpu'",
    ):
        default_device()


@pytest.mark.skipif(HAS_CUDA, reason="checks the error on a machine without a GPU")
def test_asking_for_a_missing_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("BPTT_DEVICE", "cuda")
    with pytest.raises(ValueError, match="BPTT_DEVICE: asked for 'cuda', but PyTorch sees no"):
        default_device()
    with pytest.raises(ValueError, match="device: asked for 'cuda:0'"):
        resolve_device("cuda:0")


def test_resolve_device_accepts_strings_and_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError, match="device: expected 'auto', 'cpu'"):
        resolve_device("mps")
    with pytest.raises(TypeError, match="device: expected a str, torch.device or None, got int"):
        resolve_device(0)


def test_progress_switch(monkeypatch):
    monkeypatch.setenv("BPTT_PROGRESS", "1")
    assert progress_enabled(True) and not progress_enabled(False)
    with progress_bar(range(3), progress=True) as shown:
        assert not shown.disable
    monkeypatch.setenv("BPTT_PROGRESS", "0")
    assert not progress_enabled(True)
    bar = progress_bar(range(3), progress=True)
    assert bar.disable and list(bar) == [0, 1, 2]
    monkeypatch.delenv("BPTT_PROGRESS")
    assert progress_enabled(True)
    monkeypatch.setenv("BPTT_PROGRESS", "yes")
    with pytest.raises(ValueError, match="environment variable BPTT_PROGRESS: expected '0' or"):
        progress_enabled(True)
    with pytest.raises(TypeError, match="progress: expected a bool"):
        progress_enabled(1)
