"""The one place where the course chooses a device (DESIGN.md: nothing else names one).

``default_device()`` returns CUDA when PyTorch can see a GPU and the CPU otherwise; the
environment variable ``BPTT_DEVICE`` overrides that choice (``cpu``, ``cuda``, ``cuda:N``, or
``auto`` for the default rule). Every model, trainer and benchmark takes its device from here.
"""

from __future__ import annotations

import os
import re

import torch

ENV_VAR = "BPTT_DEVICE"
_VALID = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def _cuda_device(name: str, source: str) -> torch.device:
    if not torch.cuda.is_available():
        raise ValueError(
            f"{source}: asked for {name!r}, but PyTorch sees no CUDA GPU here; "
            f"use 'cpu' (or unset {ENV_VAR})"
        )
    device = torch.device(name)
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(
            f"{source}: asked for {name!r}, but only "
            f"{torch.cuda.device_count()} CUDA device(s) exist"
        )
    return device


def _parse(name: str, source: str) -> torch.device:
    name = name.strip().lower()
    if not _VALID.match(name):
        raise ValueError(f"{source}: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {name!r}")
    if name == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if name.startswith("cuda"):
        return _cuda_device(name, source)
    return torch.device(name)


def default_device() -> torch.device:
    """The course's device: ``$BPTT_DEVICE`` if set, else CUDA when available, else the CPU.

    Raises ``ValueError`` naming ``BPTT_DEVICE`` when the variable holds something other than
    ``auto``/``cpu``/``cuda``/``cuda:N``, or asks for a GPU that is not there.
    """
    return _parse(os.environ.get(ENV_VAR, "auto"), f"environment variable {ENV_VAR}")


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a ``torch.device``; ``None`` means :func:`default_device`.

    Strings are validated like ``BPTT_DEVICE`` (``ValueError`` naming ``device``); anything
    that is not a string, a ``torch.device`` or ``None`` raises ``TypeError``.
    """
    if device is None:
        return default_device()
    if isinstance(device, torch.device):
        return _parse(str(device), "device")
    if isinstance(device, str):
        return _parse(device, "device")
    raise TypeError(f"device: expected a str, torch.device or None, got {type(device).__name__}")
