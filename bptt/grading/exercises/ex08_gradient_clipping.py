"""Checks of exercise 8: gradient clipping written by hand ("Exploding gradients and clipping").

The learner writes, for an iterable of torch parameters (possibly a generator such as
``model.parameters()``, which can be walked only once; parameters whose ``.grad`` is None are
skipped, as torch does):

- ``clip_grad_norm(parameters, max_norm)`` -> the global norm ||g|| of all the gradients taken
  together (one long vector), measured before clipping; every ``p.grad`` is scaled in place by
  min(1, max_norm / ||g||), like ``torch.nn.utils.clip_grad_norm_``;
- ``clip_grad_value(parameters, clip_value)``: every gradient entry clamped in place into
  [-clip_value, clip_value], like ``torch.nn.utils.clip_grad_value_``;
- ``answers()`` with q1 (a parameter's norm after global clipping), q2 (the longest possible
  SGD step under clipping) and q3 (a choice: which clipping can turn the update's direction).

Expected values come from the definitions, applied in numpy to the check's own copy of the
gradients; the questions are answered by running ``torch.nn.utils`` on small examples.
"""

from __future__ import annotations

import numpy as np

from ..errors import WrongOutput, a_type
from ..hints import array_value, close, compare, scalar_value
from ..parts import Exercise, Part, Verdict
from ..questions import choice_question, number_question
from ._support import rng_for, torch

SHAPES = ((4, 3), (4,), (2, 4))
UNUSED_SHAPE = (3,)
NONE_GRAD_HINT = "some parameters have no gradient (p.grad is None): skip them, as torch does"
UNCHANGED = (
    "did not change: change each p.grad in place (p.grad.mul_(...), p.grad.clamp_(...)) and "
    "make a list of the parameters first (model.parameters() can be walked only once)"
)


def _case(rng: np.random.Generator, grad_scale: float, threshold: float) -> dict:
    """Parameters (float64 leaves) with gradients drawn at ``grad_scale``, plus one unused
    parameter whose ``.grad`` is None, and the clipping threshold."""
    t = torch()
    values = [rng.normal(size=s) for s in SHAPES]
    grads = [grad_scale * rng.normal(size=s) for s in SHAPES]
    params = []
    for value, grad in zip(values, grads):
        p = t.tensor(value, dtype=t.float64, requires_grad=True)
        p.grad = t.tensor(grad, dtype=t.float64)
        params.append(p)
    unused = t.tensor(rng.normal(size=UNUSED_SHAPE), dtype=t.float64, requires_grad=True)
    return {
        "params": params,
        "unused": unused,
        "values": values,
        "grads": grads,
        "threshold": threshold,
    }


def _flat(arrays) -> np.ndarray:
    return np.concatenate([np.ravel(a) for a in arrays])


def _collect_case(function, case: dict, label: str) -> dict:
    """Call ``function(generator of parameters, threshold)``; return what it did to them."""
    params = case["params"]
    everything = [params[0], case["unused"], *params[1:]]
    result = function((p for p in everything), case["threshold"])
    unused_grad = case["unused"].grad
    return {
        "result": result,
        f"the gradients after clipping ({label})": _flat(
            [np.zeros(p.shape) if p.grad is None else p.grad.detach().numpy() for p in params]
        ),
        f"the parameters ({label})": _flat([p.detach().numpy() for p in everything]),
        f"the unused parameter's grad is None ({label})": float(unused_grad is None),
    }


def _common_hints(case: dict, label: str, values) -> list[str | None]:
    """Hints shared by both parts: parameters untouched, grads of unused parameters left None."""
    hints = []
    params = _flat([case["values"][0], case["unused"].detach().numpy(), *case["values"][1:]])
    if not close(array_value(values, f"the parameters ({label})"), params):
        hints.append("the parameters themselves changed: clip p.grad, not p or p.data")
    if scalar_value(values, f"the unused parameter's grad is None ({label})", "p.grad") != 1:
        hints.append(f"a parameter whose grad is None got one: {NONE_GRAD_HINT}")
    return hints


# ----------------------------------------------------------------------------- clip_grad_norm

NORM_CASES = (("norm above max_norm", 2.0, 1.5), ("norm below max_norm", 0.2, 3.0))


def _norm_inputs(seed: int) -> list[tuple[str, dict]]:
    rng = rng_for(seed, "ex08.norm")
    return [(label, _case(rng, scale, threshold)) for label, scale, threshold in NORM_CASES]


def _returned_norm(result) -> float:
    try:
        return float(result)
    except (TypeError, ValueError, RuntimeError):
        raise WrongOutput(
            f"clip_grad_norm: should return the global norm before clipping (a number), got {a_type(result)}"
        ) from None


def _collect_norm(functions, cases):
    values = {}
    for label, case in cases:
        collected = _collect_case(functions["clip_grad_norm"], case, label)
        collected[f"the returned norm ({label})"] = _returned_norm(collected.pop("result"))
        values.update(collected)
    return values


def _norm_hints(case: dict, label: str, values) -> list[str | None]:
    grads, tau = case["grads"], case["threshold"]
    norms = np.array([np.linalg.norm(g) for g in grads])
    total = float(np.sqrt(np.sum(norms**2)))
    expected = _flat(grads) * min(1.0, tau / total)
    per_parameter = _flat([g * min(1.0, tau / n) for g, n in zip(grads, norms)])
    gradient_variants = [
        (_flat(grads), UNCHANGED),
        (per_parameter, "each parameter was clipped on its own: use one norm over all gradients"),
        (
            _flat(grads) * (tau / total),
            "scaled although the norm was already below max_norm: the factor is min(1, max_norm / norm)",
        ),
    ]
    norm_variants = [
        (min(total, tau), "is the norm after clipping: return the norm before clipping"),
        (
            float(np.sum(norms)),
            "adds up the parameters' norms: the global norm is the square root of the sum of all squared entries",
        ),
        (total**2, "is the squared norm: take the square root"),
    ]
    key = f"the gradients after clipping ({label})"
    returned = f"the returned norm ({label})"
    return [
        compare(key, array_value(values, key), expected, variants=gradient_variants),
        compare(returned, array_value(values, returned), total, variants=norm_variants),
        *_common_hints(case, label, values),
    ]


def _score_norm(cases, values):
    return Verdict.from_cases(("", _norm_hints(c, label, values)) for label, c in cases)


# ----------------------------------------------------------------------------- clip_grad_value

VALUE_CASE = ("clip_value 1", 1.5, 1.0)


def _value_inputs(seed: int) -> tuple[str, dict]:
    label, scale, threshold = VALUE_CASE
    return label, _case(rng_for(seed, "ex08.value"), scale, threshold)


def _collect_value(functions, inputs):
    label, case = inputs
    collected = _collect_case(functions["clip_grad_value"], case, label)
    collected.pop("result")
    return collected


def _score_value(inputs, values):
    label, case = inputs
    grads, c = _flat(case["grads"]), case["threshold"]
    variants = [
        (grads, UNCHANGED),
        (
            np.minimum(grads, c),
            "only the upper bound is applied: clamp into [-clip_value, clip_value]",
        ),
        (
            grads * min(1.0, c / np.linalg.norm(grads)),
            "the whole gradient was rescaled: clipping by value clamps each entry on its own",
        ),
    ]
    key = f"the gradients after clipping ({label})"
    hints = [compare(key, array_value(values, key), np.clip(grads, -c, c), variants=variants)]
    return Verdict.from_hints(hints + _common_hints(case, label, values))


# ----------------------------------------------------------------------------- questions

Q1_NORMS, Q1_MAX_NORM = (3.0, 4.0), 1.0
Q2_LR, Q2_MAX_NORM = 0.1, 5.0


def _q1_first_norm() -> float:
    """||g_1|| after torch's global clipping of gradients with norms 3 and 4 at max_norm 1."""
    t = torch()
    params = [t.zeros(2, dtype=t.float64, requires_grad=True) for _ in Q1_NORMS]
    for p, n in zip(params, Q1_NORMS):
        p.grad = t.tensor([n, 0.0], dtype=t.float64)
    t.nn.utils.clip_grad_norm_(params, Q1_MAX_NORM)
    return float(params[0].grad.norm())


def _q2_longest_step() -> float:
    """The length of an SGD step with a huge gradient clipped at max_norm (torch's clipping)."""
    t = torch()
    generator = t.Generator().manual_seed(5)
    params = [t.zeros(s, dtype=t.float64, requires_grad=True) for s in ((6, 6), (6,))]
    for p in params:
        p.grad = 1e6 * t.randn(p.shape, generator=generator, dtype=t.float64)
    t.nn.utils.clip_grad_norm_(params, Q2_MAX_NORM)
    t.optim.SGD(params, lr=Q2_LR).step()
    return float(t.sqrt(sum((p.detach() ** 2).sum() for p in params)))


def _q3_direction() -> str:
    """a: only clipping by value can turn the update, b: only by norm, c: both (tried out)."""
    t = torch()
    turned = {}
    for name, clip in (
        ("norm", lambda p: t.nn.utils.clip_grad_norm_([p], 1.0)),
        ("value", lambda p: t.nn.utils.clip_grad_value_([p], 1.0)),
    ):
        p = t.zeros(2, dtype=t.float64, requires_grad=True)
        g = t.tensor([10.0, 0.5], dtype=t.float64)
        p.grad = g.clone()
        clip(p)
        cosine = float(p.grad @ g / (p.grad.norm() * g.norm()))
        turned[name] = cosine < 1 - 1e-12
    return {(True, False): "a", (False, True): "b", (True, True): "c"}[
        (turned["value"], turned["norm"])
    ]


EXERCISE = Exercise(
    "ex08",
    "Gradient clipping by hand",
    (
        Part(
            "clip_grad_norm",
            4,
            ("clip_grad_norm",),
            _norm_inputs,
            _collect_norm,
            _score_norm,
            error_hints=(("NoneType", NONE_GRAD_HINT),),
        ),
        Part(
            "clip_grad_value",
            2,
            ("clip_grad_value",),
            _value_inputs,
            _collect_value,
            _score_value,
            error_hints=(("NoneType", NONE_GRAD_HINT),),
        ),
        number_question("q1", _q1_first_norm, rtol=1e-3),
        number_question("q2", _q2_longest_step, rtol=1e-3),
        choice_question("ex08", "q3", "abc", compute=_q3_direction),
    ),
)

# Library functions each part asks the learner to write: tripwires in the batch grader.
EXERCISE = EXERCISE.forbidding(
    {
        "clip_grad_norm": (
            "torch.nn.utils.clip_grad_norm_",
            "bptt.torch.monitor.clip_grad_norm",
        ),
        "clip_grad_value": (
            "torch.nn.utils.clip_grad_value_",
            "bptt.torch.monitor.clip_grad_value",
        ),
    }
)
