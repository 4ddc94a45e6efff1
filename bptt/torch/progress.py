"""Progress bars for long loops: ``tqdm.auto`` (a widget in Jupyter, text in a terminal).

A bar is shown when the caller passes ``progress=True`` *and* the environment variable
``BPTT_PROGRESS`` is not ``0`` (the test suite sets it to ``0`` so logs stay clean).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from tqdm.auto import tqdm

ENV_VAR = "BPTT_PROGRESS"


def progress_enabled(progress: bool) -> bool:
    """Whether a loop should draw a bar: ``progress`` and ``$BPTT_PROGRESS`` is not ``0``.

    ``BPTT_PROGRESS`` may be unset, ``0`` or ``1``; any other value raises ``ValueError``.
    """
    if not isinstance(progress, bool):
        raise TypeError(f"progress: expected a bool, got {type(progress).__name__}")
    value = os.environ.get(ENV_VAR, "1").strip()
    if value not in ("0", "1"):
        raise ValueError(f"environment variable {ENV_VAR}: expected '0' or '1', got {value!r}")
    return progress and value == "1"


def progress_bar(
    iterable: Iterable | None = None,
    *,
    total: int | None = None,
    desc: str | None = None,
    progress: bool = True,
) -> tqdm:
    """A ``tqdm.auto`` bar over ``iterable`` (or a manual one of ``total`` steps), disabled
    when :func:`progress_enabled` says so; a disabled bar still iterates and updates."""
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        disable=not progress_enabled(progress),
        leave=False,
        dynamic_ncols=True,
    )
