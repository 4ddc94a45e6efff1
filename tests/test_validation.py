"""Wrong input fails early with a message naming the argument, the expected and the received.

Each case calls one public function of the numpy core with one bad argument and checks the
exception type and that the message contains every listed fragment (the argument's name, the
expected shape in the docstring's symbols, the sizes fixed by other arguments, and the shape
or value received).
"""

from __future__ import annotations

import numpy as np
import pytest

from bptt import gradcheck, jacobians, linear, rnn, rtrl, spectral, truncation

rng = np.random.default_rng(0)
B, T, D, H, Q = 2, 3, 4, 5, 2
x = rng.standard_normal((B, T, D))
h0 = rng.standard_normal((B, H))
W_xh = rng.standard_normal((H, D))
W_hh = 0.3 * rng.standard_normal((H, H))
b = np.zeros(H)
W_hy = rng.standard_normal((Q, H))
y = rng.standard_normal((B, T, Q))
dh = rng.standard_normal((B, T, H))
h, cache = rnn.forward(x, h0, W_xh, W_hh, b)
step_cache = rnn.step_forward(x[:, 0], h0, W_xh, W_hh, b)[1]
J = jacobians.step_jacobians(h, W_hh)
params = rnn.init_params(D, H, Q, rng=1)


def with_nan(a, index):
    a = a.copy()
    a[index] = np.nan
    return a


CASES = {
    # wrong rank
    "x rank": (
        lambda: rnn.forward(x[0], h0, W_xh, W_hh, b),
        ValueError,
        ["x:", "3-D", "(B, T, D)", "2-D", "(3, 4)"],
    ),
    "linear x rank": (
        lambda: linear.forward(x[..., None], W_xh, W_hh, W_hy),
        ValueError,
        ["x:", "(B, T, D)", "(2, 3, 4, 1)"],
    ),
    "b rank": (
        lambda: rnn.forward(x, h0, W_xh, W_hh, b[None]),
        ValueError,
        ["b:", "(H,)", "H = 5 (from W_xh)", "(1, 5)"],
    ),
    "J rank": (lambda: jacobians.span_product(J[0], 0, 1), ValueError, ["J:", "(B, T, H, H)"]),
    # mismatched shapes
    "W_hh mismatch": (
        lambda: rnn.forward(x, h0, W_xh, np.zeros((H, H + 1)), b),
        ValueError,
        ["W_hh:", "(H, H)", "H = 5 (from W_xh)", "(5, 6)"],
    ),
    "W_xh vs x": (
        lambda: rnn.forward(x, h0, np.zeros((H, D + 1)), W_hh, b),
        ValueError,
        ["W_xh:", "(H, D)", "D = 4 (from x)", "(5, 5)"],
    ),
    "h0 batch": (
        lambda: rnn.forward(x, h0[:1], W_xh, W_hh, b),
        ValueError,
        ["h0:", "(B, H)", "B = 2 (from x)", "(1, 5)"],
    ),
    "dh vs cache": (
        lambda: rnn.backward(dh[:, :2], cache),
        ValueError,
        ["dh:", "(B, T, H)", "T = 3 (from cache.h)", "(2, 2, 5)"],
    ),
    "dh_t vs step cache": (
        lambda: rnn.step_backward(dh[:, 0, :4], step_cache),
        ValueError,
        ["dh_t:", "(B, H)", "H = 5", "(2, 4)"],
    ),
    "step x_t vs W_xh": (
        lambda: rnn.step_forward(x[:, 0, :3], h0, W_xh, W_hh, b),
        ValueError,
        ["W_xh:", "(H, D)", "D = 3 (from x_t)", "(5, 4)"],
    ),
    "mse y": (
        lambda: rnn.mse_loss(y, y[:, :, :1]),
        ValueError,
        ["y:", "(B, T, Q)", "Q = 2 (from o)", "(2, 3, 1)"],
    ),
    "readout W_hy": (
        lambda: rnn.readout(h, W_hy[:, :3]),
        ValueError,
        ["W_hy:", "(Q, H)", "H = 5 (from h)", "(2, 3)"],
    ),
    "linear W_hy": (
        lambda: linear.gradients(x, y, W_xh, W_hh, W_hy[:, :4]),
        ValueError,
        ["W_hy:", "(Q, H)", "H = 5 (from W_xh)", "(2, 4)"],
    ),
    "linear y": (
        lambda: linear.gradients(x, y[:, :2], W_xh, W_hh, W_hy),
        ValueError,
        ["y:", "(B, T, Q)", "T = 3 (from x)", "(2, 2, 2)"],
    ),
    "power sum do": (
        lambda: linear.hidden_gradients_power_sum(y[0], W_hh, W_hy),
        ValueError,
        ["do:", "(B, T, Q)", "(3, 2)"],
    ),
    "jacobian g_T": (
        lambda: jacobians.gradients_from_last(J, h0[:, :4]),
        ValueError,
        ["g_T:", "(B, H)", "H = 5 (from J)", "(2, 4)"],
    ),
    "not square": (
        lambda: spectral.eigenvalues(np.zeros((2, 3))),
        ValueError,
        ["M:", "(n, n)", "(2, 3)"],
    ),
    "v0 length": (
        lambda: spectral.power_iteration(W_hh, 3, v0=np.ones(4)),
        ValueError,
        ["v0:", "(n,)", "n = 5 (from M)", "(4,)"],
    ),
    "xi shape": (
        lambda: truncation.scaled_gradient(dh, cache, np.ones((B, T + 1))),
        ValueError,
        ["xi:", "(B, T)", "T = 3 (from dh)", "(2, 4)"],
    ),
    "rtrl dh": (
        lambda: rtrl.gradients(x, h0, W_xh, W_hh, b, dh[:, :, :4]),
        ValueError,
        ["dh:", "(B, T, H)", "H = 5 (from W_xh)", "(2, 3, 4)"],
    ),
    "rtrl S": (
        lambda: rtrl.step(np.zeros((B, H, 7)), x[:, 0], h0, W_xh, W_hh, b),
        ValueError,
        ["S:", "(B, H, P+H)", "P+H = 55", "(2, 5, 7)"],
    ),
    "relative error shapes": (
        lambda: gradcheck.relative_error(np.ones(3), np.ones((3, 1))),
        ValueError,
        ["a, b", "(3,)", "(3, 1)"],
    ),
    "empty sequence": (
        lambda: rnn.forward(x[:, :0], h0, W_xh, W_hh, b),
        ValueError,
        ["x:", "(B, T, D)", "size >= 1", "(2, 0, 4)"],
    ),
    # integer, boolean, complex or non-numeric arrays where floats are needed
    "x int": (
        lambda: rnn.forward(x.astype(int), h0, W_xh, W_hh, b),
        TypeError,
        ["x:", "floating-point", "(B, T, D)", "int64", "(2, 3, 4)"],
    ),
    "W_hh bool": (
        lambda: linear.forward(x, W_xh, W_hh > 0, W_hy),
        TypeError,
        ["W_hh:", "(H, H)", "bool", "(5, 5)"],
    ),
    "complex M": (
        lambda: spectral.spectral_norm(np.eye(2) * 1j),
        TypeError,
        ["M:", "(m, n)", "complex128", "(2, 2)"],
    ),
    "ragged list": (
        lambda: rnn.readout([[[1.0], [1.0, 2.0]]], W_hy),
        TypeError,
        ["h:", "(B, T, H)", "not an array"],
    ),
    "targets float": (
        lambda: rnn.cross_entropy_loss(y, y[..., 0]),
        TypeError,
        ["targets:", "integer", "(B, T)", "float64", "(2, 3)"],
    ),
    "targets out of range": (
        lambda: rnn.cross_entropy_loss(y, np.full((B, T), 2)),
        ValueError,
        ["targets:", "[0, 2)", "V = 2", "(2, 3)"],
    ),
    "float32 for finite differences": (
        lambda: gradcheck.numerical_gradient(np.sum, np.ones(3, np.float32)),
        TypeError,
        ["x:", "float64", "float32", "(3,)"],
    ),
    # non-finite values
    "x nan": (
        lambda: rnn.forward(with_nan(x, (1, 2, 3)), h0, W_xh, W_hh, b),
        ValueError,
        ["x:", "finite", "(B, T, D)", "(1, 2, 3)", "(2, 3, 4)"],
    ),
    "W_hh inf": (
        lambda: linear.gradients(x, y, W_xh, W_hh * np.inf, W_hy),
        ValueError,
        ["W_hh:", "finite", "(H, H)", "(5, 5)"],
    ),
    "dh nan": (
        lambda: truncation.truncated_gradient(with_nan(dh, (0, 0, 0)), cache, 2),
        ValueError,
        ["dh:", "finite", "(B, T, H)", "(2, 3, 5)"],
    ),
    # tau and pi
    "tau zero": (lambda: truncation.truncated_gradient(dh, cache, 0), ValueError, ["tau", ">= 1"]),
    "tau float": (lambda: truncation.truncated_gradient(dh, cache, 1.5), TypeError, ["tau", "1.5"]),
    "pi zero": (lambda: truncation.sample_xi((3,), 0.0, rng=0), ValueError, ["pi", "(0, 1]"]),
    "pi above one": (
        lambda: truncation.randomized_gradients(dh, cache, 1.5, samples=2, rng=0),
        ValueError,
        ["pi", "(0, 1]", "1.5"],
    ),
    "pi negative": (
        lambda: truncation.monte_carlo(dh, cache, -0.2, samples=2, rng=0),
        ValueError,
        ["pi", "(0, 1]"],
    ),
    "pi nan": (lambda: truncation.growth_factor(0.5, float("nan")), ValueError, ["pi", "finite"]),
    "pi bool": (lambda: truncation.sample_xi((3,), True, rng=0), TypeError, ["pi"]),
    # other scalars and options
    "samples": (
        lambda: truncation.monte_carlo(dh, cache, 0.5, samples=1, rng=0),
        ValueError,
        ["samples", ">= 2"],
    ),
    "rng": (lambda: truncation.sample_xi((3,), 0.5, rng="seed"), TypeError, ["rng", "Generator"]),
    "cache type": (lambda: truncation.full_gradient(dh, {"h": h}), TypeError, ["cache", "Cache"]),
    "step cache type": (
        lambda: rnn.step_backward(dh[:, 0], cache),
        TypeError,
        ["cache", "StepCache"],
    ),
    "activation": (
        lambda: rnn.forward(x, h0, W_xh, W_hh, b, activation="relu"),
        ValueError,
        ["activation", "'tanh'", "'relu'"],
    ),
    "steps": (lambda: rnn.mse_loss(y, y, steps="first"), ValueError, ["steps", "'last'"]),
    "loss name": (
        lambda: rnn.loss_and_gradients(x, y, params, loss="hinge"),
        ValueError,
        ["loss", "'mse'", "'hinge'"],
    ),
    "params keys": (
        lambda: rnn.loss_and_gradients(x, y, {"W_xh": W_xh}),
        TypeError,
        ["params", "W_hh", "['W_xh']"],
    ),
    "span times": (lambda: jacobians.span_product(J, 2, 1), ValueError, ["start", "stop", "T = 3"]),
    "span beyond T": (
        lambda: jacobians.span_product(J, 0, 4),
        ValueError,
        ["stop = 4", "(2, 3, 5, 5)"],
    ),
    "scalar law T": (lambda: jacobians.scalar_law(0.5, -1), ValueError, ["T", ">= 0"]),
    "radius": (lambda: spectral.scale_to_spectral_radius(W_hh, 0.0), ValueError, ["radius", "> 0"]),
    "sigma": (lambda: spectral.scale_to_spectral_norm(W_hh, -1.0), ValueError, ["sigma", "> 0"]),
    "steps negative": (lambda: spectral.power_iteration(W_hh, -1, rng=0), ValueError, ["steps"]),
    "orthogonal n": (lambda: spectral.orthogonal(0, rng=0), ValueError, ["n", ">= 1"]),
    "vanishing activation": (
        lambda: spectral.vanishing_bound(W_hh, "relu"),
        ValueError,
        ["activation", "'sigmoid'"],
    ),
    "init size": (lambda: rnn.init_params(3, 0, 2, rng=0), ValueError, ["H", ">= 1"]),
    "eps": (lambda: gradcheck.numerical_gradient(np.sum, np.ones(2), eps=0.0), ValueError, ["eps"]),
    "f callable": (lambda: gradcheck.numerical_gradient(3.0, np.ones(2)), TypeError, ["f:"]),
    "arrays dict": (
        lambda: gradcheck.numerical_gradients(np.sum, [np.ones(2)]),
        TypeError,
        ["arrays"],
    ),
    "not dicts": (
        lambda: gradcheck.max_relative_error([np.ones(1)], {"a": np.ones(1)}),
        TypeError,
        ["a, b", "two dicts", "list"],
    ),
    "keys differ": (
        lambda: gradcheck.relative_errors({"a": np.ones(1)}, {"b": np.ones(1)}),
        ValueError,
        ["a, b", "['a']", "['b']"],
    ),
    "z": (
        lambda: truncation.monte_carlo(dh, cache, 0.5, samples=2, rng=0).covers({}, z=0),
        ValueError,
        ["z", "> 0"],
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_raises_a_message_with_name_and_shapes(case):
    call, error, fragments = CASES[case]
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    missing = [f for f in fragments if f not in message]
    assert not missing, f"{missing} not in: {message}"


def test_good_input_passes_the_same_checks():
    """The fixtures above are valid: each bad case differs from them in one argument only."""
    rnn.forward(x, h0, W_xh, W_hh, b)
    linear.gradients(x, y, W_xh, W_hh, W_hy)
    truncation.truncated_gradient(dh, cache, 1)
    rtrl.gradients(x, h0, W_xh, W_hh, b, dh)
    jacobians.span_product(J, 0, T)
    rnn.cross_entropy_loss(y, np.ones((B, T), dtype=np.int64))
