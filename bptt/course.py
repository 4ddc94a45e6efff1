"""The preamble every chapter runs: figure style, experiment scale, device and threads.

A chapter starts with ``course = setup()`` (numpy chapters) or ``course = setup(torch=True)``
(chapters that train with PyTorch) instead of repeating these lines. The scale comes from the
environment variable ``BPTT_SCALE`` (``small``, the default that runs on a laptop CPU, or
``full``); the device from ``BPTT_DEVICE`` through :func:`bptt.torch.default_device`.
"""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np

from bptt import _validate as v

SCALE_ENV_VAR = "BPTT_SCALE"
SCALES = ("small", "full")


@dataclasses.dataclass(frozen=True)
class Course:
    """What :func:`setup` chose: ``scale`` (``"small"`` or ``"full"``) and ``device`` (a
    ``torch.device``, or None for a numpy chapter)."""

    scale: str
    device: object = None

    @property
    def full(self) -> bool:
        """True when the chapter should run its full-size experiment."""
        return self.scale == "full"


def scale() -> str:
    """``$BPTT_SCALE`` checked against :data:`SCALES` (``"small"`` when unset)."""
    return v.choice(f"environment variable {SCALE_ENV_VAR}",
                    os.environ.get(SCALE_ENV_VAR, "small"), SCALES)


def setup(*, torch: bool = False, threads: int = 1) -> Course:
    """Apply the course's figure style and return the chapter's :class:`Course`.

    ``torch=True`` also picks the device (``BPTT_DEVICE``, else CUDA when present, else the CPU)
    and, on the CPU, limits PyTorch to ``threads`` threads: the course's models are small, and
    one thread is faster than several for them (and leaves the other core to the test runner).
    """
    from bptt import plots

    threads = v.integer("threads", threads, minimum=1)
    plots.use_course_style()
    if not torch:
        return Course(scale())
    import torch as _torch

    from bptt.torch import default_device

    device = default_device()
    if device.type == "cpu":
        _torch.set_num_threads(threads)
    return Course(scale(), device)


GLUE_DIGITS = 4
"""Significant digits a glued real number keeps (:func:`glue`)."""


def glued_value(value: object) -> object:
    """``value`` as :func:`glue` records it: a real number (Python or numpy float) rounded to
    :data:`GLUE_DIGITS` significant digits, anything else unchanged.

    Prose shows at most that many digits, and the digits beyond them are where CPUs differ: the
    same training run on a processor whose kernels use other vector instructions ends a few
    units of 1e-7 away, which would make the stored notebook fail to reproduce there.
    """
    if isinstance(value, (float, np.floating)) and math.isfinite(value):
        return float(f"{float(value):.{GLUE_DIGITS}g}")
    return value


def glue(name: str, value: object, display: bool = True) -> None:
    """Record ``value`` under ``name`` for the book's ``{glue}`` roles (myst-nb's ``glue``);
    real numbers are rounded to :data:`GLUE_DIGITS` significant digits (:func:`glued_value`).

    Where myst-nb is not installed (a learner's Colab or Binder session, which needs no book
    build), nothing is recorded and the value is only shown when ``display`` is true, so a
    chapter runs the same everywhere.
    """
    value = glued_value(value)
    try:
        from myst_nb import glue as record
    except ImportError:
        if display:
            from IPython.display import display as show

            show(value)
        return
    record(name, value, display=display)
