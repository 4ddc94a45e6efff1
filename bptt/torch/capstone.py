"""The two training configurations of the capstone (Capstone: a character-level language model), shared with its benchmark.

A character-level LSTM language model trained with TBPTT(K, K) and gradient-norm clipping.
``"small"`` fits the 2-core CPU the course is tested on; ``"full"`` is the GPU-sized run
(``BPTT_SCALE=full``). ``rounds * updates_per_round`` TBPTT updates of ``K`` steps each, over
``batch`` parallel streams of the corpus (``max_chars=None``: the whole corpus). The
learning rate falls linearly from ``lr`` in the first round to ``lr_final`` in the last
(:func:`capstone_lr`).

The small run is as long as the chapter's budget allows (about fifty seconds of one CPU
thread): 64 streams (the throughput of one CPU thread is about 1.5 times that of 32 streams at
this size), and rounds of 120 updates, so that one round reads all but a few steps of every
stream and an epoch covers the whole training text. Its corpus is the first 300,000 characters, the size the chapter has always used, not
one chosen to favour the recurrent model or the n-gram baselines it is compared with.
"""

from __future__ import annotations

CAPSTONE_CHUNK = 35
"""K = k1 = k2: steps per TBPTT chunk, as in word-level language models."""

CAPSTONE_CLIP = 1.0
"""Threshold of gradient-norm clipping."""

CAPSTONE_CONFIGS: dict[str, dict] = {
    "small": {"max_chars": 300_000, "hidden": 128, "embedding": 32, "batch": 64,
              "lr": 1e-2, "lr_final": 3e-4, "rounds": 8, "updates_per_round": 120},
    "full": {"max_chars": None, "hidden": 512, "embedding": 64, "batch": 64,
             "lr": 2e-3, "lr_final": 2e-4, "rounds": 36, "updates_per_round": 90},
}


def capstone_config(scale: str) -> dict:
    """A copy of the configuration named ``scale`` ("small" or "full"); ValueError otherwise."""
    if scale not in CAPSTONE_CONFIGS:
        raise ValueError(
            f"unknown capstone scale {scale!r}: use one of {sorted(CAPSTONE_CONFIGS)} "
            "(set BPTT_SCALE to choose)"
        )
    return dict(CAPSTONE_CONFIGS[scale])


def capstone_lr(config: dict, round_: int) -> float:
    """The learning rate of round ``round_`` (0-based): linear from ``lr`` to ``lr_final``."""
    rounds = config["rounds"]
    if not 0 <= round_ < rounds:
        raise ValueError(f"round_: expected 0..{rounds - 1}, got {round_}")
    fraction = round_ / max(rounds - 1, 1)
    return config["lr"] + fraction * (config["lr_final"] - config["lr"])
