"""Helpers the exercise checks share: seeded generators, reading learner results, torch leaves.

torch is imported inside :func:`torch`, never at module level, so the numpy exercises'
COLLECT step (which runs in the learner's kernel or the grader's child) stays torch-free.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import zlib
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from ..errors import WrongOutput, a_type


def rng_for(seed: int, salt: str) -> np.random.Generator:
    """A generator for the inputs of one part: distinct parts get distinct streams."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(salt.encode())])


def derived_seed(seed: int, salt: str) -> int:
    """A seed for the learner's own generators, drawn from the grader's seed (never the seed itself)."""
    return int(rng_for(seed, salt).integers(2**32))


def entries(result: Any, keys: tuple[str, ...], what: str) -> dict[str, Any]:
    """``{key: result[key]}`` for a learner function's dict result; WrongOutput if it is not one."""
    if not isinstance(result, Mapping):
        raise WrongOutput(
            f"{what} should return a dict with keys {', '.join(keys)}; got {a_type(result)}"
        )
    absent = [k for k in keys if k not in result]
    if absent:
        raise WrongOutput(f"{what}'s result has no key {', '.join(repr(k) for k in absent)}")
    return {k: result[k] for k in keys}


def pair(result: Any, what: str, names: str) -> tuple[Any, Any]:
    """The two items of a learner function's ``(a, b)`` result; WrongOutput otherwise."""
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise WrongOutput(f"{what} should return a pair {names}; got {a_type(result)}")
    return result[0], result[1]


def copied(value: Any) -> Any:
    """A deep copy of nested dicts/lists/dataclasses of arrays, so learner code cannot alter the inputs."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: copied(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **fields)
    if isinstance(value, Mapping):
        return {k: copied(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copied(v) for v in value]
    return value


def tensor_with_grad(value, grad, requires_grad: bool):
    """A leaf tensor with its ``.grad`` set (how the batch grader sends such inputs)."""
    value.requires_grad_(requires_grad)
    value.grad = grad
    return value


def torch():
    """The torch module, with float64 as the dtype the checks compute in."""
    import torch as _torch

    return _torch


def leaf(array: np.ndarray):
    """A float64 torch tensor that requires grad, from a numpy array."""
    t = torch()
    return t.tensor(np.asarray(array, dtype=float), dtype=t.float64, requires_grad=True)


def grad_of(tensor) -> np.ndarray:
    """The gradient stored on a leaf as a numpy array (zeros when autograd never reached it)."""
    if tensor.grad is None:
        return np.zeros(tuple(tensor.shape))
    return tensor.grad.detach().numpy().copy()


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch on one thread inside the block (tiny models: threads only add overhead).

    The learner's own thread setting is restored afterwards.
    """
    t = torch()
    threads = t.get_num_threads()
    t.set_num_threads(1)
    try:
        yield
    finally:
        t.set_num_threads(threads)


AUTOGRAD = (
    "torch.autograd.grad",
    "torch.autograd.backward",
    "torch.Tensor.backward",
    "torch.autograd.forward_ad.make_dual",
    "torch.autograd.forward_ad.unpack_dual",
    "torch.func.jacfwd",
    "torch.func.jvp",
    "torch.func.vjp",
    "torch.func.linearize",
)
"""Automatic differentiation, reverse and forward mode: tripwires of the parts that ask for a
derivative by hand (``torch.func.jacrev``, ``torch.func.grad`` and
``torch.autograd.functional`` go through ``torch.autograd.grad`` and trip with it)."""


def trained_predictor(functions: Mapping[str, Any], seed: int, takes: str):
    """``(predict, cpu)``: the learner's ``train(seed)`` run on one thread, the function it
    returns and the CPU seconds it took (a training challenge's budget). ``takes`` names what
    ``predict`` is called with, for the error when ``train`` returns something else."""
    with single_threaded():
        start = time.process_time()
        predict = functions["train"](seed)
        cpu = time.process_time() - start
    if not callable(predict):
        raise WrongOutput(
            f"train(seed): should return a function predict({takes}), got {a_type(predict)}"
        )
    return predict, cpu

