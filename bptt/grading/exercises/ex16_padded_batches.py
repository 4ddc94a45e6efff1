"""Checks of exercise 16: two bugs of padded sequence batches ("Teacher forcing, padded batches
and both directions", equation `sequences-masked-loss`).

A batch of B sequences of lengths T_i <= T, padded to T steps, batch first. The learner gets two
working-looking functions, each with one planted bug, and fixes them:

- ``masked_loss(logits, targets, lengths)``: logits (B, T, Q), targets (B, T) integer classes
  (the padding holds 0, a real class id), lengths (B,) -> ``(loss, dlogits)``: the cross-entropy
  averaged over the real steps only (equation `sequences-masked-loss`) and its gradient with
  respect to the logits, (B, T, Q), zero on the padding;
- ``teacher_forcing(tokens, lengths, start)``: tokens (B, T) padded symbol ids, lengths (B,),
  start the id of the start symbol -> ``(inputs, targets)``, both (B, T), for next-symbol
  prediction with teacher forcing: step t is fed the true previous symbol (``start`` at t = 0)
  and must predict tokens[:, t]; targets are -1 (no target) on the padding. Inputs on the
  padding are not graded.

Expected values: the loss of every sequence computed on its own, unpadded, and summed (torch
autograd in float64 for the gradient); the teacher-forcing pairs built sequence by sequence.
"""

from __future__ import annotations

import numpy as np

from ..hints import array_value, compare
from ..parts import Exercise, Part, Verdict
from ._support import leaf, pair, rng_for, torch

PAD = 0  # the padding id of the targets: a real class, as padding ids often are
DIVIDED_BY_ALL = "divided by all B * T steps, padding included: divide by the number of real steps"
OFF_BY_ONE = "the mask is one step off: step t is real when t < T_i (0-based)"
UNMASKED = "the padded steps count with the padding's class as their target: mask them out"
PER_SEQUENCE = (
    "that is the mean of the per-sequence means: equation sequences-masked-loss weights every "
    "real step equally, so divide the sum by the number of real steps"
)


def _mask(lengths: np.ndarray, T: int, *, shift: int = 0) -> np.ndarray:
    return np.arange(T)[None, :] < (lengths[:, None] + shift)


# ----------------------------------------------------------------------------- masked_loss


def _loss_inputs(seed: int) -> list[dict]:
    """Two batches, each with a full-length sequence and shorter ones."""
    rng = rng_for(seed, "ex16.loss")
    cases = []
    for batch in (1, 2):
        B, T, Q = int(rng.integers(3, 6)), int(rng.integers(4, 8)), int(rng.integers(3, 6))
        lengths = rng.integers(1, T, size=B)
        lengths[int(rng.integers(B))] = T
        targets = rng.integers(0, Q, size=(B, T))
        targets[~_mask(lengths, T)] = PAD
        cases.append(
            {
                "logits": rng.normal(0, 1.5, (B, T, Q)),
                "targets": targets,
                "lengths": lengths,
                "batch": batch,
            }
        )
    return cases


def _loss_key(case: dict, what: str) -> str:
    B, T, _ = case["logits"].shape
    return f"{what} (batch {case['batch']}, B = {B}, T = {T})"


def _collect_loss(functions, cases):
    values = {}
    for case in cases:
        loss, grad = pair(
            functions["masked_loss"](
                case["logits"].copy(), case["targets"].copy(), case["lengths"].copy()
            ),
            "masked_loss",
            "(loss, dlogits)",
        )
        values[_loss_key(case, "the loss")] = loss
        values[_loss_key(case, "dlogits")] = grad
    return values


def _reduced(case: dict, reduce) -> tuple[float, np.ndarray]:
    """A loss of the batch and its gradient by autograd; ``reduce(step_losses, mask)`` reduces
    the (B, T) per-step cross-entropies (the padding's target is PAD)."""
    t = torch()
    logits = leaf(case["logits"])
    steps = t.nn.functional.cross_entropy(
        logits.permute(0, 2, 1), t.tensor(case["targets"]), reduction="none"
    )
    loss = reduce(steps, t.tensor(_mask(case["lengths"], case["logits"].shape[1])))
    loss.backward()
    return float(loss.detach()), logits.grad.numpy().copy()


def _per_sequence(case: dict) -> tuple[float, np.ndarray]:
    """The expected loss and gradient: each sequence unpadded, its step losses summed, the total
    divided by the number of real steps."""
    t = torch()
    logits = leaf(case["logits"])
    total = sum(
        t.nn.functional.cross_entropy(
            logits[i, :n], t.tensor(case["targets"][i, :n]), reduction="sum"
        )
        for i, n in enumerate(case["lengths"])
    ) / int(case["lengths"].sum())
    total.backward()
    return float(total.detach()), logits.grad.numpy().copy()


def _loss_variants(case: dict) -> list[tuple[tuple[float, np.ndarray], str]]:
    """Typical wrong reductions, each with its loss and gradient (autograd) and its hint."""
    T = case["logits"].shape[1]
    shifted = _mask(case["lengths"], T, shift=1)
    return [
        (_reduced(case, lambda s, m: (s * m).sum() / s.numel()), DIVIDED_BY_ALL),
        (_reduced(case, lambda s, m: s.mean()), UNMASKED),
        (
            _reduced(case, lambda s, m: (s * torch().tensor(shifted)).sum() / int(shifted.sum())),
            OFF_BY_ONE,
        ),
        (_reduced(case, lambda s, m: ((s * m).sum(1) / m.sum(1)).mean()), PER_SEQUENCE),
    ]


def _score_loss(cases, values) -> Verdict:
    def hints(case):
        loss, grad = _per_sequence(case)
        variants = _loss_variants(case)
        mask = _mask(case["lengths"], case["logits"].shape[1])
        got_grad = np.asarray(array_value(values, _loss_key(case, "dlogits")), dtype=float)
        grad_hints = [(g, h) for (_, g), h in variants]
        if got_grad.shape == grad.shape and not np.allclose(got_grad[~mask], 0):
            grad_hints = [(got_grad, "the padded steps must get zero gradient")] + grad_hints
        return [
            compare(
                _loss_key(case, "the loss"),
                array_value(values, _loss_key(case, "the loss")),
                loss,
                variants=[(value, h) for (value, _), h in variants],
            ),
            compare(_loss_key(case, "dlogits"), got_grad, grad, variants=grad_hints),
        ]

    return Verdict.from_cases(("", hints(case)) for case in cases)


# ----------------------------------------------------------------------------- teacher_forcing

START = 7  # the start symbol's id in the check (the symbols are 0 .. 6)
AHEAD = (
    "the target of step t is tokens[:, t], the symbol after the one step t is fed, not the "
    "symbol after that"
)


def _forcing_inputs(seed: int) -> list[dict]:
    rng = rng_for(seed, "ex16.forcing")
    cases = []
    for batch in (1, 2):
        B, T = int(rng.integers(3, 6)), int(rng.integers(4, 8))
        lengths = rng.integers(1, T, size=B)
        lengths[int(rng.integers(B))] = T
        tokens = rng.integers(0, START, size=(B, T))
        tokens[~_mask(lengths, T)] = PAD
        cases.append({"tokens": tokens, "lengths": lengths, "batch": batch})
    return cases


def _forcing_key(case: dict, what: str) -> str:
    B, T = case["tokens"].shape
    return f"{what} (batch {case['batch']}, B = {B}, T = {T})"


def _collect_forcing(functions, cases):
    values = {}
    for case in cases:
        inputs, targets = pair(
            functions["teacher_forcing"](case["tokens"].copy(), case["lengths"].copy(), START),
            "teacher_forcing",
            "(inputs, targets)",
        )
        values[_forcing_key(case, "inputs")] = inputs
        values[_forcing_key(case, "targets")] = targets
    return values


def _pairs(case: dict, *, shift: int = 1, first=START, target_mask_shift: int = 0, pad=-1):
    """Inputs and targets sequence by sequence: inputs[t] = tokens[t - shift] (``first`` where
    that index is < 0), targets = tokens on the real steps and ``pad`` after them."""
    tokens, lengths = case["tokens"], case["lengths"]
    B, T = tokens.shape
    inputs, targets = np.full((B, T), -99), np.full((B, T), pad)
    for i, n in enumerate(lengths):
        sequence = list(tokens[i, :n])
        for t in range(n):
            source = t - shift
            inputs[i, t] = sequence[source] if 0 <= source < n else (first if source < 0 else PAD)
        real = min(n + target_mask_shift, T)
        targets[i, :real] = tokens[i, :real]
    return inputs, targets


def _targets_ahead(case: dict) -> np.ndarray:
    """Targets one step too far ahead: targets[t] = tokens[t + 1] on the real steps."""
    tokens, lengths = case["tokens"], case["lengths"]
    targets = np.full(tokens.shape, -1)
    for i, n in enumerate(lengths):
        targets[i, : n - 1] = tokens[i, 1:n]
    return targets


def _score_forcing(cases, values) -> Verdict:
    def hints(case):
        inputs, targets = _pairs(case)
        real = _mask(case["lengths"], case["tokens"].shape[1])
        got_inputs = np.asarray(array_value(values, _forcing_key(case, "inputs")), dtype=float)
        if got_inputs.shape == inputs.shape:
            got_inputs = np.where(real, got_inputs, inputs)  # inputs on the padding: not graded
        no_shift = "each step is fed the symbol it must predict: feed the previous one"
        input_variants = [
            (_pairs(case, shift=0)[0], no_shift),
            (_pairs(case, shift=-1)[0], "shifted the wrong way: step t is fed tokens[t - 1]"),
            (
                np.where(np.arange(inputs.shape[1]) == 0, case["tokens"], inputs),
                "step 0 is fed the start symbol",
            ),
        ]
        target_variants = [
            (_pairs(case, pad=PAD)[1], "the padded steps need target -1 (no target)"),
            (_pairs(case, target_mask_shift=1)[1], OFF_BY_ONE),
            (_targets_ahead(case), AHEAD),
        ]
        return [
            compare(_forcing_key(case, "inputs"), got_inputs, inputs, variants=input_variants),
            compare(
                _forcing_key(case, "targets"),
                array_value(values, _forcing_key(case, "targets")),
                targets,
                variants=target_variants,
            ),
        ]

    return Verdict.from_cases(("", hints(case)) for case in cases)


EXERCISE = Exercise(
    "ex16",
    "Two bugs of padded batches",
    (
        Part("masked_loss", 4, ("masked_loss",), _loss_inputs, _collect_loss, _score_loss),
        Part(
            "teacher_forcing",
            3,
            ("teacher_forcing",),
            _forcing_inputs,
            _collect_forcing,
            _score_forcing,
        ),
    ),
    kinds=("find-the-bug",),
)

# The package's own masked mean would do part 1's reduction: a tripwire in the batch grader.
EXERCISE = EXERCISE.forbidding(
    {
        "masked_loss": (
            "bptt.torch.sequences.masked_mean",
            "torch.nn.functional.cross_entropy",
        ),
        "teacher_forcing": ("bptt.torch.sequences.shift_right",),
    }
)
