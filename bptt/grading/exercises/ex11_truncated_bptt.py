"""Checks of exercise 11: truncated BPTT in torch ("Truncated BPTT").

The learner writes

- ``detach_state(state)`` -> the state cut from the autograd graph, values unchanged: a tensor,
  an LSTM's ``(h, c)`` tuple, or ``None``;
- ``train_tbptt(model, x, y, k, optimizer, loss_fn)`` -> the list of chunk losses (floats) of one
  pass of chunked truncated BPTT over x (B, T, D), y (B, T, 1): chunks of k steps (the last one
  may be shorter), the state starting at ``None`` and carried, detached, from chunk to chunk;
  per chunk one forward, ``zero_grad``, ``backward`` and ``step``. ``model(x_chunk, state)``
  returns ``(output, new_state)`` like ``torch.nn.RNN`` with ``batch_first=True``;
- ``answers()`` with q1 (updates per pass), q2 (mean steps of credit), q3 (what
  ``retain_graph=True`` instead of detaching does).

Expected values: a reference pass over a copy of the same model and data that takes gradients
with ``torch.autograd.grad`` and applies the SGD step by hand (the learner's loop uses the
optimizer), float64. Its variants (state reset every chunk, gradients never zeroed) name the
typical mistakes.
"""

from __future__ import annotations

import copy
import functools

import numpy as np

from ..errors import WrongOutput, a_type
from ..hints import array_value, compare, scalar_value
from ..parts import Exercise, Part, Verdict
from ..questions import choice_question, number_question
from ._support import grad_of, leaf, single_threaded, torch

B, T, D, H, K, LR = 3, 23, 2, 5, 5, 0.1
PARAMETER_RTOL = 1e-8
DETACH_HINT = (
    "the state still carries the previous chunk's graph: detach it after every chunk (both h and c)"
)
ERROR_HINTS = (
    ("backward through the graph a second time", DETACH_HINT),
    ("modified by an inplace operation", DETACH_HINT),
)


@functools.cache
@functools.lru_cache(maxsize=1)
def _model_class():
    nn = torch().nn

    class SequenceModel(nn.Module):
        """nn.RNN or nn.LSTM (batch first) and a linear read-out: model(x, state) -> (y, state)."""

        def __init__(self, cell: str):
            super().__init__()
            self.cell = cell
            self.rnn = (nn.LSTM if cell == "lstm" else nn.RNN)(D, H, batch_first=True)
            self.readout = nn.Linear(H, 1)

        def forward(self, x, state=None):
            out, state = self.rnn(x, state)
            return self.readout(out), state

        def __reduce__(self):
            # Pickled by the batch grader for its sandbox: the same Parameter objects, so an
            # optimizer pickled with the model still updates it.
            return build_model, (self.cell, dict(self.named_parameters()))

    return SequenceModel


def build_model(cell: str, parameters: dict):
    """A model of :func:`_model_class` made of the given ``parameters`` (name -> Parameter)."""
    model = _model_class()(cell).double()
    for name, parameter in parameters.items():
        owner, _, attribute = name.rpartition(".")
        setattr(model.get_submodule(owner), attribute, parameter)
    return model


SANDBOX_NAMES = ("build_model",)
"""Names the sandbox's pruned copy of this module keeps besides the COLLECT functions."""


def _generator(seed: int, salt: int):
    return torch().Generator().manual_seed((int(seed) & 0xFFFFFFFF) * 7919 + salt)


def _cut(state):
    """The check's own way to cut a state from the graph."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def _attached(tensor) -> bool:
    return bool(tensor.requires_grad or tensor.grad_fn is not None)


# ----------------------------------------------------------------------------- detach_state


def _state_inputs(seed: int) -> dict:
    t = torch()
    source = t.randn(1, B, H, generator=_generator(seed, 0), dtype=t.float64, requires_grad=True)
    return {"h": 2.0 * source, "c": t.tanh(source)}


def _tensor(value, what: str):
    if not isinstance(value, torch().Tensor):
        raise WrongOutput(f"{what} should be a tensor, got {a_type(value)}")
    return value


def _collect_detach(functions, inputs):
    detach = functions["detach_state"]
    single = _tensor(detach(inputs["h"]), "detach_state(h)")
    both = detach((inputs["h"], inputs["c"]))
    if not isinstance(both, tuple):
        raise WrongOutput(f"detach_state((h, c)) should return a tuple (h, c), got {a_type(both)}")
    if len(both) != 2:
        raise WrongOutput(
            f"detach_state((h, c)) should return a tuple of 2 tensors, got {len(both)} items"
        )
    h, c = (_tensor(s, f"the {n} of detach_state((h, c))") for n, s in zip("hc", both))
    return {
        "detach_state(h)": single.detach(),
        "detach_state(h) attached": float(_attached(single)),
        "h of detach_state((h, c))": h.detach(),
        "h of detach_state((h, c)) attached": float(_attached(h)),
        "c of detach_state((h, c))": c.detach(),
        "c of detach_state((h, c)) attached": float(_attached(c)),
        "detach_state(None) is None": float(detach(None) is None),
    }


def _score_detach(inputs, values):
    changed = "the values changed: detach keeps the values and only cuts the graph"
    hints = []
    for name, key in (
        ("h", "detach_state(h)"),
        ("h", "h of detach_state((h, c))"),
        ("c", "c of detach_state((h, c))"),
    ):
        expected = inputs[name].detach().numpy()
        hints.append(
            compare(key, array_value(values, key), expected, variants=[(0 * expected, changed)])
        )
        if scalar_value(values, f"{key} attached", key) != 0:
            hints.append(
                f"{key}: still attached to the graph (use .detach(), on both h and c of a tuple)"
            )
    if scalar_value(values, "detach_state(None) is None", "detach_state(None)") != 1:
        hints.append(
            "detach_state(None) should return None: the state before the first chunk is None"
        )
    return Verdict.from_hints(hints)


# ----------------------------------------------------------------------------- train_tbptt


def _training_inputs(cell: str):
    def make_inputs(seed: int) -> dict:
        t = torch()
        generator = _generator(seed, 1 if cell == "lstm" else 2)
        model = _model_class()(cell).double()
        with t.no_grad():
            for p in model.parameters():
                p.copy_(0.5 * t.randn(p.shape, generator=generator, dtype=t.float64))
        x = t.randn(B, T, D, generator=generator, dtype=t.float64)
        y = 0.5 * t.randn(B, T, 1, generator=generator, dtype=t.float64)
        optimizer = t.optim.SGD(model.parameters(), lr=LR)
        return {
            "model": model,
            "optimizer": optimizer,
            "x": x,
            "y": y,
            "k": K,
            "loss_fn": t.nn.MSELoss(),
        }

    return make_inputs


def _numbers(losses) -> list[float]:
    if not isinstance(losses, (list, tuple)):
        raise WrongOutput(
            f"train_tbptt should return the list of chunk losses, got {a_type(losses)}"
        )
    try:
        return [float(loss) for loss in losses]
    except (TypeError, ValueError, RuntimeError):
        raise WrongOutput(
            "train_tbptt should return the chunk losses as numbers (loss.item())"
        ) from None


def _parameters(model) -> np.ndarray:
    return np.concatenate([p.detach().numpy().ravel() for p in model.parameters()])


def _collect_training(functions, inputs):
    model = inputs["model"]
    args = (model, inputs["x"], inputs["y"], inputs["k"], inputs["optimizer"], inputs["loss_fn"])
    with single_threaded():
        losses = _numbers(functions["train_tbptt"](*args))
    return {"the list of chunk losses": losses, "the parameters after training": _parameters(model)}


def _reference(
    inputs: dict, *, carry: bool = True, zero_grad: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """One TBPTT pass on a copy of the model: autograd.grad and a hand-written SGD step."""
    t = torch()
    model = copy.deepcopy(inputs["model"])
    params = list(model.parameters())
    x, y, k = inputs["x"], inputs["y"], inputs["k"]
    state, losses, step = None, [], [t.zeros_like(p) for p in params]
    for start in range(0, x.shape[1], k):
        out, new_state = model(x[:, start : start + k], state)
        loss = inputs["loss_fn"](out, y[:, start : start + k])
        grads = t.autograd.grad(loss, params)
        step = list(grads) if zero_grad else [s + g for s, g in zip(step, grads)]
        with t.no_grad():
            for p, g in zip(params, step):
                p -= LR * g
        losses.append(loss.item())
        state = _cut(new_state) if carry else None
    return np.array(losses), _parameters(model)


def _score_training(inputs, values):
    chunks = len(range(0, T, K))
    losses = array_value(values, "the list of chunk losses")
    if losses.shape != (chunks,):
        return Verdict.wrong(
            f"expected {chunks} chunk losses for T = {T} and k = {K} (the last chunk is shorter), got {losses.size}"
        )
    with single_threaded():
        expected_losses, expected = _reference(inputs)
        reset_losses, reset = _reference(inputs, carry=False)
        _, piled_up = _reference(inputs, zero_grad=False)
    reset_hint = "the state is reset every chunk: carry it, detached, into the next chunk"
    variants = [
        (reset, reset_hint),
        (piled_up, "gradients pile up: call optimizer.zero_grad() before backward()"),
    ]
    params = array_value(values, "the parameters after training")
    return Verdict.from_hints(
        [
            compare(
                "the parameters after training",
                params,
                expected,
                rtol=PARAMETER_RTOL,
                variants=variants,
            ),
            compare(
                "the list of chunk losses",
                losses,
                expected_losses,
                rtol=PARAMETER_RTOL,
                variants=[(reset_losses, reset_hint)],
            ),
        ]
    )


# ----------------------------------------------------------------------------- questions

Q1_T, Q1_K = 1000, 35
Q2_K = 35


def _q1_updates() -> int:
    return len(range(0, Q1_T, Q1_K))


def _q2_mean_credit() -> float:
    """Mean over the positions j of a chunk of how many steps back dL_j/dx reaches (autograd)."""
    reach = []
    for j in range(Q2_K):
        xs = leaf(np.ones(Q2_K))
        h = torch().zeros((), dtype=torch().float64)
        for i in range(j + 1):
            h = 0.5 * h + xs[i]
        h.backward()
        reach.append(j - int(np.flatnonzero(grad_of(xs)).min()))
    return float(np.mean(reach))


def _q3_retain_graph() -> str:
    """What keeping the state attached with backward(retain_graph=True) does, tried out.

    a: exact full BPTT, b: a RuntimeError at the second backward, c: runs, but every chunk costs
    more than the one before (the graph keeps growing).
    """
    inputs = _training_inputs("rnn")(0)
    model, optimizer, x, y = inputs["model"], inputs["optimizer"], inputs["x"], inputs["y"]
    state = None
    try:
        for start in (0, K, 2 * K):
            out, state = model(x[:, start : start + K], state)
            loss = inputs["loss_fn"](out, y[:, start : start + K])
            optimizer.zero_grad()
            loss.backward(retain_graph=True)
            optimizer.step()
    except RuntimeError:
        return "b"
    return "c"


def _training_part(name: str, cell: str) -> Part:
    return Part(
        name,
        3,
        ("train_tbptt",),
        _training_inputs(cell),
        _collect_training,
        _score_training,
        error_hints=ERROR_HINTS,
    )


EXERCISE = Exercise(
    "ex11",
    "Truncated BPTT in torch",
    (
        Part(
            "detach_state",
            2,
            ("detach_state",),
            _state_inputs,
            _collect_detach,
            _score_detach,
            error_hints=(("NoneType", "detach_state(None) should return None"),),
        ),
        _training_part("train_tbptt_rnn", "rnn"),
        _training_part("train_tbptt_lstm", "lstm"),
        number_question("q1", _q1_updates, rtol=0.0, atol=0.5),
        number_question("q2", _q2_mean_credit, rtol=1e-2),
        choice_question("ex11", "q3", "abc", compute=_q3_retain_graph),
    ),
)

# Library functions each part asks the learner to write: tripwires in the batch grader.
EXERCISE = EXERCISE.forbidding(
    {
        "detach_state": ("bptt.torch.state.detach_state",),
        "train_tbptt_rnn": ("bptt.torch.tbptt.train_tbptt",),
        "train_tbptt_lstm": ("bptt.torch.tbptt.train_tbptt",),
    }
)
