"""The two training configurations of the capstone (chapter 16), shared with its benchmark.

A character-level LSTM language model trained with TBPTT(K, K) and gradient-norm clipping.
``"small"`` fits the 2-core CPU the course is tested on; ``"full"`` is the GPU-sized run
(``BPTT_SCALE=full``). ``rounds * updates_per_round`` TBPTT updates of ``K`` steps each, over
``batch`` parallel streams of the corpus (``max_chars=None``: the whole corpus).
"""

from __future__ import annotations

CAPSTONE_CHUNK = 35
"""K = k1 = k2: steps per TBPTT chunk, as in word-level language models."""

CAPSTONE_CLIP = 1.0
"""Threshold of gradient-norm clipping."""

CAPSTONE_CONFIGS: dict[str, dict] = {
    "small": {"max_chars": 300_000, "hidden": 128, "embedding": 32, "batch": 32,
              "lr": 3e-3, "rounds": 10, "updates_per_round": 30},
    "full": {"max_chars": None, "hidden": 512, "embedding": 64, "batch": 64,
             "lr": 2e-3, "rounds": 36, "updates_per_round": 30},
}


def capstone_config(scale: str) -> dict:
    """A copy of the configuration named ``scale`` ("small" or "full"); ValueError otherwise."""
    if scale not in CAPSTONE_CONFIGS:
        raise ValueError(
            f"unknown capstone scale {scale!r}: use one of {sorted(CAPSTONE_CONFIGS)} "
            "(set BPTT_SCALE to choose)"
        )
    return dict(CAPSTONE_CONFIGS[scale])
