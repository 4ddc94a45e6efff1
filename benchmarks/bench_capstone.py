"""The capstone's training throughput ("Capstone: a character-level language model"), in characters per second.

Both configurations of :mod:`bptt.torch.capstone` ("small", the CPU run the course executes,
and "full", the GPU-sized one) train the same way as the chapter: a character LSTM
(``capstone_model``, fused layer), TBPTT(35, 35), AdamW, gradient-norm clipping, ``train_tbptt`` over
``updates`` chunks of the corpus streams. Each timed call runs ``updates`` TBPTT updates;
characters per second = batch * K * updates / median time. Runs on the CPU (torch on one
thread, as the chapter sets it) and, when a GPU is lent, on the GPU too.
"""

from __future__ import annotations

import torch

from benchmarks.harness import CPU, Table, log, measurement_meta, time_call, torch_gemm_rate
from bptt import tasks
from bptt.torch import (
    CAPSTONE_CHUNK,
    CAPSTONE_CLIP,
    batchify,
    capstone_config,
    capstone_model,
    default_device,
    next_token_pairs,
    token_cross_entropy,
    train_tbptt,
)


def _trainer(config: dict, corpus, device: torch.device, updates: int):
    """A function that runs ``updates`` TBPTT updates of the capstone on ``device``."""
    x, y = next_token_pairs(batchify(corpus.train, config["batch"], device=device))
    steps = CAPSTONE_CHUNK * updates
    if x.shape[1] < steps:
        raise ValueError(f"the corpus is too short for {updates} updates of {CAPSTONE_CHUNK} steps")
    model = capstone_model(config, len(corpus.vocab), seed=0, device=device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["lr"],
                                  weight_decay=config["weight_decay"])

    def train():
        train_tbptt(model, x[:, :steps], y[:, :steps], k1=CAPSTONE_CHUNK, k2=CAPSTONE_CHUNK,
                    optimizer=optimizer, loss_fn=token_cross_entropy, clip_norm=CAPSTONE_CLIP,
                    progress=False)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return train


def run(quick: bool = False) -> list[Table]:
    devices = [torch.device("cpu")]
    if default_device().type == "cuda":
        devices.append(default_device())
    corpus = tasks.char_corpus(max_chars=300_000, seed=0)
    updates = {"small": 2 if quick else 10, "full": 1 if quick else 3}
    rows = []
    before = measurement_meta()["load_average"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    gemm = torch_gemm_rate(clock=CPU)
    torch.set_num_threads(threads)
    try:
        for device in devices:
            if device.type == "cpu":
                torch.set_num_threads(1)
            for scale in ("small", "full"):
                config = capstone_config(scale)
                if quick:
                    config.update(hidden=32, batch=8)
                log(f"  {scale} on {device}")
                seconds = time_call(_trainer(config, corpus, device, updates[scale]),
                                    repeats=3, warmup=1)
                characters = config["batch"] * CAPSTONE_CHUNK * updates[scale]
                rows.append([scale, str(device), config["hidden"], config["batch"],
                             updates[scale], seconds, characters / seconds])
    finally:
        torch.set_num_threads(threads)
    return [
        Table(
            name="capstone_throughput",
            title="Capstone training throughput: char LSTM, TBPTT(35, 35), AdamW, clipping",
            columns=["config", "device", "H", "streams", "updates", "time (s)", "characters/s"],
            rows=rows,
            notes="Median of 3 timed calls after 1 warm-up call, each running `updates` TBPTT "
            "updates; torch on 1 thread on the CPU, as the chapter runs it. A single "
            "contender per row (no ratio), so no paired rounds.",
            meta=measurement_meta(load_before=before, threads=1,
                                  gemm_gflops={"torch float32 1 thread": gemm}),
        )
    ]
