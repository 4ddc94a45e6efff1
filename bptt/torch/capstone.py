"""The two training configurations of the capstone (Capstone: a character-level language model), shared with its benchmark.

A character-level LSTM language model trained with TBPTT(K, K) and gradient-norm clipping.
``"small"`` fits the 2-core CPU the course is tested on; ``"full"`` is the GPU-sized run
(``BPTT_SCALE=full``). ``rounds * updates_per_round`` TBPTT updates of ``K`` steps each, over
``batch`` parallel streams of the corpus (``max_chars=None``: the whole corpus). The
learning rate falls linearly from ``lr`` in the first round to ``lr_final`` in the last
(:func:`capstone_lr`). ``dropout`` and ``dropout_mode`` are passed to :class:`CharLM`
(:mod:`bptt.torch.dropout`): dropout on the non-recurrent connections, which keeps the fused
kernel.

The small run is as long as the chapter's budget allows (under a minute of one CPU thread):
64 streams, and rounds of 120 updates, so that one round reads all but a few steps of every
stream and a round is an epoch of the training text. H = 256 with dropout p = 0.2 replaced
H = 128 without dropout: the smaller model fitted its training text far better than the
held-out text after a few epochs, and its validation bpc stopped falling. Its corpus is the
first 300,000 characters, the size the chapter has always used, not one chosen to favour the
recurrent model or the n-gram baselines it is compared with.
"""

from __future__ import annotations

import torch

from bptt import _validate as v

from .contract import token_cross_entropy
from .tbptt import train_tbptt

CAPSTONE_CHUNK = 35
"""K = k1 = k2: steps per TBPTT chunk, as in word-level language models."""

CAPSTONE_CLIP = 1.0
"""Threshold of gradient-norm clipping."""

CAPSTONE_CONFIGS: dict[str, dict] = {
    "small": {"max_chars": 300_000, "hidden": 256, "embedding": 64, "batch": 64,
              "dropout": 0.2, "dropout_mode": "zaremba",
              "lr": 8e-3, "lr_final": 2e-4, "rounds": 9, "updates_per_round": 120},
    "full": {"max_chars": None, "hidden": 512, "embedding": 64, "batch": 64,
             "dropout": 0.3, "dropout_mode": "zaremba",
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


DROPOUT_VARIANTS = ("none", "zaremba", "variational", "fresh")
"""The rows of the capstone's dropout comparison: no dropout, then the three
``CharLM(dropout_mode=...)`` modes of :mod:`bptt.torch.dropout`."""


def train_epochs(model, x, y, *, epochs: int, lr: float, lr_final: float,
                 k: int = CAPSTONE_CHUNK, clip: float = CAPSTONE_CLIP) -> list[float]:
    """Train ``model`` for ``epochs`` passes of TBPTT(k, k) over the streams x, y (B, T).

    Each pass starts from a zero state and carries it across chunks; Adam's learning rate
    falls linearly from ``lr`` (first pass) to ``lr_final`` (last); gradient norms are
    clipped at ``clip``. The model is in training mode (dropout on) during the passes and
    left in eval mode. Returns the mean training cross-entropy (nats) of each pass.
    """
    v.integer("epochs", epochs, minimum=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    for epoch in range(epochs):
        for group in optimizer.param_groups:
            group["lr"] = lr + epoch / max(epochs - 1, 1) * (lr_final - lr)
        run = train_tbptt(model, x, y, k1=k, k2=k, optimizer=optimizer,
                          loss_fn=token_cross_entropy, clip_norm=clip, progress=False)
        losses.append(sum(run.loss) / len(run.loss))
    model.eval()
    return losses
