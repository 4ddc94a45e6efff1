"""Tests of bptt.plots: the course style, the unrolled-graph diagram and the curve helpers."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bptt import plots


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _count(ax, gid):
    return sum(1 for p in ax.patches if p.get_gid() == gid)


def _texts(ax):
    return [t.get_text() for t in ax.texts]


# --------------------------------------------------------------------------- style


def test_use_course_style_sets_rcparams_and_is_idempotent():
    with matplotlib.rc_context():
        matplotlib.rcParams["axes.grid"] = False
        plots.use_course_style()
        plots.use_course_style()
        assert matplotlib.rcParams["axes.grid"] is True
        assert matplotlib.rcParams["axes.spines.top"] is False
        colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
        assert [c.lower() for c in colors] == [c.lower() for c in plots.PALETTE]


# --------------------------------------------------------------------------- unrolled graph


@given(T=st.integers(1, 10), loss=st.sampled_from(["every", "last"]), backward=st.booleans())
def test_unrolled_graph_counts(T, loss, backward):
    ax = plots.draw_unrolled_graph(T, backward=backward, loss=loss)
    n_losses = T if loss == "every" else 1
    total = 1 if loss == "every" else 0
    # h_0..h_T, x_1..x_T, the loss nodes and (for a loss at every step) the total L
    assert _count(ax, "node") == (T + 1) + T + n_losses + total
    # x_t -> h_t, h_{t-1} -> h_t, h_t -> L_t, and L_t -> L
    assert _count(ax, "forward") == 2 * T + n_losses + (n_losses if total else 0)
    # bar h_t: h_t -> h_{t-1} for every t, and ell_t -> h_t
    assert _count(ax, "backward") == ((T + n_losses) if backward else 0)
    texts = _texts(ax)
    # tied weights: the same label on every recurrent arrow
    assert texts.count("$W_{hh}$") == T
    assert texts.count("$W_{xh}$") == T
    assert sum(t.startswith("$\\bar h_") for t in texts) == (T if backward else 0)
    assert ("$L = \\frac{1}{T}\\sum_t \\ell_t$" in texts) == (loss == "every")
    plt.close("all")


def test_unrolled_graph_labels_and_axes():
    fig, ax = plt.subplots()
    out = plots.draw_unrolled_graph(3, ax=ax, title="three steps")
    assert out is ax
    assert ax.get_title() == "three steps"
    assert not ax.axison
    texts = _texts(ax)
    for name in ("$h_0$", "$h_{3}$", "$x_{1}$", "$\\ell_{2}$", "$L$"):
        assert name in texts
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0] == "forward pass" and legend[1].startswith("backward pass")
    fig.canvas.draw()  # mathtext of every label must render


def test_unrolled_graph_last_loss_only():
    ax = plots.draw_unrolled_graph(4, loss="last")
    texts = _texts(ax)
    assert "$\\ell_{4}$" in texts and "$\\ell_{1}$" not in texts and "$L = \\ell_T$" in texts


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"T": 0}, ValueError, "T: expected an integer >= 1, got 0"),
        ({"T": 11}, ValueError, r"T: expected an integer in \[1, 10\]"),
        ({"T": 2.0}, TypeError, "T: expected an integer"),
        ({"T": True}, TypeError, "T: expected an integer"),
        ({"T": 3, "loss": "first"}, ValueError, r"loss: expected one of \['every', 'last'\]"),
        ({"T": 3, "backward": 1}, TypeError, "backward: expected a bool"),
        ({"T": 3, "ax": "not axes"}, TypeError, "ax: expected a matplotlib Axes"),
    ],
)
def test_unrolled_graph_rejects_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        plots.draw_unrolled_graph(**kwargs)


# --------------------------------------------------------------------------- curves


def test_gradient_vs_distance_draws_on_log_axis():
    d = np.arange(10)
    norms = 0.8**d
    ax = plots.plot_gradient_vs_distance(
        d, norms, label="measured", reference=0.8**d, reference_label="$0.8^{T-k}$"
    )
    assert ax.get_yscale() == "log"
    assert "steps" in ax.get_xlabel() and "log scale" in ax.get_ylabel()
    measured, reference = ax.get_lines()
    np.testing.assert_array_equal(measured.get_ydata(), norms)
    np.testing.assert_array_equal(reference.get_xdata(), d)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["measured", "$0.8^{T-k}$"]


def test_gradient_vs_distance_without_labels_has_no_legend():
    ax = plots.plot_gradient_vs_distance([0, 1, 2], [1.0, 0.5, 0.25])
    assert ax.get_legend() is None


def test_gradient_vs_distance_custom_axis_labels_into_given_axes():
    fig, ax = plt.subplots()
    out = plots.plot_gradient_vs_distance(
        [1, 2], [0.5, 0.25], ax, xlabel="lag $d$ (tokens)", ylabel="norm"
    )
    assert out is ax
    assert ax.get_xlabel() == "lag $d$ (tokens)" and ax.get_ylabel() == "norm (log scale)"
    fig.canvas.draw()


@pytest.mark.parametrize(
    "distance, norms, kwargs, error, match",
    [
        ([0, 1, 2], [1.0, 0.0, 0.5], {}, ValueError, "norms: expected values > 0 to draw on a log"),
        ([0, 1, 2], [1.0, np.nan, 0.5], {}, ValueError, "norms: expected finite values"),
        (
            [0, 1, 2],
            [1.0, 0.5],
            {},
            ValueError,
            r"norms: expected shape \(N,\) with N = 3 \(from distance\), got shape \(2,\)",
        ),
        (
            [[0, 1]],
            [1.0, 0.5],
            {},
            ValueError,
            r"distance: expected a 1-D array of shape \(N,\), got a 2-D array of shape \(1, 2\)",
        ),
        ([], [], {}, ValueError, r"distance: expected .*\(N,\).* got shape \(0,\)"),
        (["a", "b"], [1.0, 0.5], {}, TypeError, "distance: expected a floating-point array"),
        ([0, 1], [1.0 + 1j, 0.5], {}, TypeError, "norms: expected a floating-point array"),
        ([0, 1], [1.0, 0.5], {"reference": [1.0]}, ValueError, r"reference: expected shape \(N,\)"),
        (
            [0, 1],
            [1.0, 0.5],
            {"reference": [1.0, -1.0]},
            ValueError,
            "reference: expected values > 0",
        ),
    ],
)
def test_gradient_vs_distance_rejects_bad_input(distance, norms, kwargs, error, match):
    with pytest.raises(error, match=match):
        plots.plot_gradient_vs_distance(distance, norms, **kwargs)


def test_learning_curve_steps_start_at_one_with_baseline():
    losses = [1.0, 0.5, 0.3]
    ax = plots.plot_learning_curve(
        losses, label="train", baseline=0.7, ylabel="loss (nats per character)"
    )
    curve, base = ax.get_lines()
    np.testing.assert_array_equal(curve.get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(base.get_ydata(), [0.7, 0.7])
    assert ax.get_yscale() == "log"
    assert ax.get_ylabel() == "loss (nats per character) (log scale)"


def test_learning_curve_linear_axis_allows_negative_losses():
    ax = plots.plot_learning_curve([0.5, -0.1], log=False)
    assert ax.get_yscale() == "linear" and ax.get_ylabel() == "loss"
    with pytest.raises(ValueError, match="losses: expected values > 0"):
        plots.plot_learning_curve([0.5, -0.1])
    with pytest.raises(ValueError, match="baseline: expected values > 0"):
        plots.plot_learning_curve([0.5, 0.1], baseline=0.0)
    with pytest.raises(TypeError, match="baseline: expected a real number"):
        plots.plot_learning_curve([0.5, 0.1], baseline="low")


@given(
    exponent=st.floats(-3, 3, allow_nan=False),
    scale=st.floats(1e-3, 1e3),
    n=st.integers(2, 12),
)
def test_loglog_slope_recovers_power_law(exponent, scale, n):
    sizes = np.geomspace(10, 1000, n)
    assert plots.loglog_slope(sizes, scale * sizes**exponent) == pytest.approx(exponent, abs=1e-9)


def test_loglog_slope_rejects_degenerate_sizes():
    with pytest.raises(ValueError, match="sizes: expected at least two distinct"):
        plots.loglog_slope([5, 5, 5], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="sizes: expected values > 0"):
        plots.loglog_slope([0, 5], [1.0, 2.0])


def test_plot_scaling_reports_slope_in_legend():
    T = np.array([50, 100, 200])
    ax = plots.plot_scaling(
        T, 1e-6 * T**2.0, label="power sum", xlabel="sequence length T (steps)", ylabel="time (s)"
    )
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["power sum (slope 2.00)"]
    assert ax.get_xlabel() == "sequence length T (steps)"
    plots.plot_scaling([25, 50], [1.0, 2.0], ax, label="other", xlabel="T", ylabel="s")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["25", "50", "100", "200"]
