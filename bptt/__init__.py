"""BPTT, executable: the derivations of the course as checked code.

Submodules are imported on first use, so ``import bptt`` is fast and never imports torch:

>>> import bptt
>>> bptt.linear.forward  # doctest: +SKIP   (imports bptt.linear now)

The numpy modules (``linear``, ``rnn``, ``jacobians``, ``spectral``, ``truncation``,
``gradcheck``, ``tasks``, ``rtrl``, ``influence``, ``lstm``, ``gru``) never import torch; ``bptt.torch``,
``bptt.torch.attention`` and ``bptt.grading`` do, when they are used.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "course",
    "gradcheck",
    "grading",
    "gru",
    "influence",
    "jacobians",
    "linear",
    "lstm",
    "plots",
    "rnn",
    "rtrl",
    "spectral",
    "tasks",
    "torch",
    "truncation",
    "widgets",
)

_HEAVY = ("grading", "torch")
"""Imported only by name (``bptt.torch``), never by ``from bptt import *``."""

__all__ = ["__version__", "course", "gradcheck", "influence", "jacobians", "linear", "plots", "rnn",
           "rtrl", "spectral", "tasks", "truncation", "widgets"]


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'bptt' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))
