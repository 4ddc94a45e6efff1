"""The course's figure style and the figure helpers that several chapters share.

* :func:`use_course_style` - one call at the top of a chapter sets fonts, sizes, grid and colours,
  and (in a notebook) makes figures PNGs at twice their displayed resolution.
* :func:`figure_metadata` - the cell metadata that gives a figure its caption, alt text and label
  in the book (``tools/nbtool.py figure`` writes it into a notebook).
* :func:`draw_unrolled_graph` - the unrolled computational graph of a recurrent network, drawn
  by code: forward arrows (solid) and the backward adjoints (dashed).
* :func:`plot_gradient_vs_distance` - gradient norm against distance in time on a log scale.
* :func:`plot_learning_curve` - loss against training step.
* :func:`plot_scaling` and :func:`loglog_slope` - a cost against a size on log-log axes with
  its fitted growth exponent.

Every helper draws into the ``ax`` it is given (or a new one) and returns that axes object, so a
chapter can add to it. Nothing here saves files or calls ``plt.show()``.
"""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyArrowPatch
from matplotlib.ticker import NullFormatter

from bptt import _validate as v

# Colour-blind friendly palette (Okabe & Ito); the first two are the forward and backward colours.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
FORWARD_COLOR = PALETTE[0]
BACKWARD_COLOR = PALETTE[1]

# Sized for the book's text column: a figure is laid out at figure.dpi = 100 CSS pixels per inch,
# so 6.4 x 3.8 in is 640 px wide, about the column at 1280 px, and 12 pt text is 17 px there; a
# 390 px phone shrinks it to 0.55, where the 11 pt legend and tick labels are still 8-9 px tall.
# Draw narrower figures (figsize=(5, 3.2)) for side-by-side panels rather than smaller fonts.
_COURSE_RC = {
    "figure.figsize": (6.4, 3.8),
    "figure.dpi": 100,
    "figure.constrained_layout.use": True,
    "font.size": 12,
    "axes.titlesize": 13,
    "axes.labelsize": 12,
    "xtick.labelsize": 11,
    "ytick.labelsize": 11,
    "axes.grid": True,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": mpl.cycler(color=list(PALETTE)),
    "grid.alpha": 0.3,
    "grid.linestyle": "-",
    "legend.frameon": False,
    "legend.fontsize": 11,
    "lines.linewidth": 1.8,
    "savefig.bbox": "tight",
}

_NODE_RADIUS = 0.36
_COLUMN_GAP = 1.7
_ROW_Y = {"x": 0.0, "h": 1.6, "loss": 3.2, "total": 4.6}


def use_course_style() -> None:
    """Set the course's matplotlib defaults (call once, at the top of a chapter).

    Figures get a common size, fonts sized for the book's column, a light grid, no top/right
    spines, a colour-blind friendly colour cycle (``PALETTE``) and constrained layout. In a
    notebook (IPython with the inline backend) figures are stored as "retina" PNGs: twice the
    pixels, displayed at the same size, so they stay sharp on phones and high-density screens.
    Calling it again is harmless.
    """
    mpl.rcParams.update(_COURSE_RC)
    _use_retina_pngs()


def _use_retina_pngs() -> None:
    """Make the inline backend store figures at 2x (only inside a running IPython kernel)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        return
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:
        return
    set_matplotlib_formats("retina")


def figure_metadata(alt: str, caption: str | None = None, name: str | None = None) -> dict:
    """The cell metadata that makes a code cell's figure a captioned, labelled figure in the book.

    myst-nb reads ``metadata["mystnb"]["image"]["alt"]`` (the alt text: what the figure shows,
    in a sentence, for a reader who cannot see it) and ``metadata["mystnb"]["figure"]``
    (``caption``, MyST markdown, and ``name``, the label that ``{numref}`` cites). Write it into a
    notebook with ``python tools/nbtool.py figure NOTEBOOK CELL --alt ... --caption ... --name ...``
    (CELL: the cell's index or id) rather than by hand.

    Returns ``{"mystnb": {"image": {"alt": ...}, "figure": {"caption": ..., "name": ...}}}``
    (without ``figure`` when neither caption nor name is given).
    """
    if not isinstance(alt, str) or len(alt.strip()) < 10:
        raise ValueError(
            f"alt: expected a sentence saying what the figure shows (10+ characters), got {alt!r}"
        )
    for label, text in (("caption", caption), ("name", name)):
        if text is not None and (not isinstance(text, str) or not text.strip()):
            raise TypeError(f"{label}: expected a non-empty string or None, got {text!r}")
    metadata: dict = {"mystnb": {"image": {"alt": alt.strip()}}}
    figure = {key: value for key, value in (("caption", caption), ("name", name)) if value}
    if figure:
        metadata["mystnb"]["figure"] = figure
    return metadata


def _new_axes(ax, figsize=None):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    elif not isinstance(ax, mpl.axes.Axes):
        raise TypeError(f"ax: expected a matplotlib Axes or None, got {type(ax).__name__}")
    return ax


def _as_curve(name: str, values, dims: v.Dims, *, positive: bool = False) -> np.ndarray:
    """``values`` as a finite 1-D float array of shape (N,), N shared through ``dims``.

    Integer input (such as time steps) is accepted and converted; ``positive`` also demands
    every entry > 0, as a log axis does.
    """
    arr = np.asarray(values)
    if np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(float)
    arr = v.float_array(name, arr, ("N",), dims)  # also refuses an empty array
    if positive and np.any(arr <= 0):
        raise ValueError(
            f"{name}: expected values > 0 to draw on a log scale, got minimum {arr.min():.3g}"
        )
    return arr


# --------------------------------------------------------------------------- unrolled graph


def _node(ax, xy, text, *, filled=False):
    face = "#DCEBF7" if filled else "white"
    ax.add_patch(
        Circle(
            xy, _NODE_RADIUS, facecolor=face, edgecolor="0.2", linewidth=1.2, zorder=3, gid="node"
        )
    )
    ax.text(*xy, text, ha="center", va="center", fontsize=11, zorder=4)


def _on_circles(a, b, radius=_NODE_RADIUS):
    """The segment between node centres ``a`` and ``b``, cut back to the two circles."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    unit = (b - a) / np.linalg.norm(b - a)
    return a + radius * unit, b - radius * unit


def _on_circle(centre, degrees):
    """The point of a node's circle at the given angle (degrees, counter-clockwise from east)."""
    angle = np.deg2rad(degrees)
    return np.asarray(centre, float) + _NODE_RADIUS * np.array([np.cos(angle), np.sin(angle)])


def _arrow(ax, start, end, *, backward, rad=0.0, label=None, label_offset=(0.0, 0.0)):
    """Arrow from ``start`` to ``end`` (data coordinates), solid forward or dashed backward."""
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle="-|>",
            mutation_scale=12,
            linewidth=1.4,
            color=BACKWARD_COLOR if backward else FORWARD_COLOR,
            linestyle=(0, (4, 2)) if backward else "-",
            connectionstyle=f"arc3,rad={rad}",
            shrinkA=0,
            shrinkB=0,
            zorder=2,
            gid="backward" if backward else "forward",
        )
    )
    if label is not None:
        mid = (np.asarray(start) + np.asarray(end)) / 2 + np.asarray(label_offset)
        ax.text(
            *mid,
            label,
            ha="center",
            va="center",
            fontsize=9,
            zorder=4,
            color=BACKWARD_COLOR if backward else "0.15",
        )


def draw_unrolled_graph(
    T: int = 4, ax=None, *, backward: bool = True, loss: str = "every", title: str | None = None
):
    """Draw the unrolled graph of ``h_t = f(h_{t-1}, x_t; theta)`` for ``T`` steps.

    Three rows of nodes: inputs ``x_t`` (bottom), hidden states ``h_t`` (middle, with ``h_0`` at
    the left) and per-step losses ``ell_t`` (top), plus the mean ``L = (1/T) sum_t ell_t`` when there is a
    loss at every step. Solid arrows are the forward pass; every ``h_{t-1} -> h_t`` arrow carries
    the same label ``W_hh`` because the weights are tied across time. With ``backward=True``,
    dashed arrows show the backward pass: the gradient entering each hidden state from its loss
    and the adjoint ``bar h_t = dL/dh_t`` travelling from ``h_t`` back to ``h_{t-1}``.

    Parameters
    ----------
    T : int, 1 <= T <= 10
        Number of time steps drawn.
    ax : matplotlib Axes or None
        Where to draw; a new figure sized to ``T`` when None.
    backward : bool
        Also draw the backward (adjoint) arrows.
    loss : {"every", "last"}
        A loss at every step (``L = (1/T) sum_t ell_t``) or at the last step only (``L = ell_T``).
    title : str or None
        Axes title.

    Returns the axes. Patches carry ``gid`` "node", "forward" or "backward" (used by the tests).
    """
    T = v.integer("T", T, minimum=1)
    if T > 10:
        raise ValueError(
            f"T: expected an integer in [1, 10] (more steps do not fit a page), got {T}"
        )
    v.choice("loss", loss, ("every", "last"))
    if not isinstance(backward, bool):
        raise TypeError(f"backward: expected a bool, got {backward!r}")
    ax = _new_axes(ax, figsize=(1.5 + 1.45 * T, 4.2))

    col = {t: t * _COLUMN_GAP for t in range(T + 1)}
    y_x, y_h, y_l, y_tot = (_ROW_Y[k] for k in ("x", "h", "loss", "total"))
    loss_steps = range(1, T + 1) if loss == "every" else [T]

    _node(ax, (col[0], y_h), "$h_0$", filled=True)
    for t in range(1, T + 1):
        _node(ax, (col[t], y_x), f"$x_{{{t}}}$")
        _node(ax, (col[t], y_h), f"$h_{{{t}}}$", filled=True)
        _arrow(
            ax,
            *_on_circles((col[t], y_x), (col[t], y_h)),
            backward=False,
            label="$W_{xh}$",
            label_offset=(-0.32, 0.0),
        )
        _arrow(
            ax,
            *_on_circles((col[t - 1], y_h), (col[t], y_h)),
            backward=False,
            label="$W_{hh}$",
            label_offset=(0.0, 0.2),
        )
        if backward:  # bar h_t flows back to h_{t-1} along an arc under the forward arrow
            _arrow(
                ax,
                _on_circle((col[t], y_h), 235),
                _on_circle((col[t - 1], y_h), 305),
                backward=True,
                rad=-0.45,
                label=f"$\\bar h_{{{t}}}$",
                label_offset=(0.0, -0.5),
            )

    for t in loss_steps:
        _node(ax, (col[t], y_l), f"$\\ell_{{{t}}}$")
        _arrow(ax, _on_circle((col[t], y_h), 105), _on_circle((col[t], y_l), 255), backward=False)
        if backward:
            _arrow(ax, _on_circle((col[t], y_l), 285), _on_circle((col[t], y_h), 75), backward=True)
    if loss == "every":
        centre = (col[1] + col[T]) / 2
        _node(ax, (centre, y_tot), "$L$")
        for t in loss_steps:
            _arrow(ax, *_on_circles((col[t], y_l), (centre, y_tot)), backward=False)
        ax.text(col[T] + 0.6, y_tot, "$L = \\frac{1}{T}\\sum_t \\ell_t$", ha="left", va="center", fontsize=11)
    else:
        ax.text(col[T] + 0.6, y_l, "$L = \\ell_T$", ha="left", va="center", fontsize=11)

    handles = [Line2D([], [], color=FORWARD_COLOR, label="forward pass")]
    if backward:
        handles.append(
            Line2D(
                [],
                [],
                color=BACKWARD_COLOR,
                linestyle=(0, (4, 2)),
                label="backward pass ($\\bar h_t = \\partial L / \\partial h_t$)",
            )
        )
    ax.legend(handles=handles, loc="upper left", fontsize=9)
    top = y_tot if loss == "every" else y_l
    ax.set_xlim(col[0] - 0.8, col[T] + 1.9)
    ax.set_ylim(y_x - 0.8, top + 0.9)
    ax.set_aspect("equal")
    ax.set_axis_off()
    if title is not None:
        ax.set_title(title)
    return ax


# --------------------------------------------------------------------------- curves


def plot_gradient_vs_distance(
    distance,
    norms,
    ax=None,
    *,
    label: str | None = None,
    reference=None,
    reference_label: str | None = None,
    xlabel: str = "distance in time $T-k$ (steps)",
    ylabel: str = r"$\|\partial L / \partial h_k\|$",
):
    """Plot gradient norms against the distance in time on a log y-axis.

    Exponential vanishing or explosion (``norm ~ gamma^(T-k)``) is a straight line here.

    Parameters
    ----------
    distance : (N,) array of real numbers, e.g. ``T - k`` in time steps.
    norms : (N,) array of positive real numbers, the gradient norm at each distance.
    ax : matplotlib Axes or None.
    label : legend entry for the measured curve.
    reference : (N,) positive array or None, a law drawn dashed for comparison (e.g. ``w**d``).
    reference_label : legend entry for the reference.
    xlabel : x-axis label, with its unit.
    ylabel : y-axis label; " (log scale)" is appended.

    Returns the axes.
    """
    dims: v.Dims = {}
    d = _as_curve("distance", distance, dims)
    n = _as_curve("norms", norms, dims, positive=True)
    ax = _new_axes(ax)
    ax.plot(d, n, marker="o", markersize=3.5, label=label)
    if reference is not None:
        r = _as_curve("reference", reference, dims, positive=True)
        ax.plot(d, r, linestyle="--", color="0.35", label=reference_label)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{ylabel} (log scale)")
    if label is not None or reference_label is not None:
        ax.legend()
    return ax


def plot_learning_curve(
    losses,
    ax=None,
    *,
    label: str | None = None,
    baseline: float | None = None,
    baseline_label: str = "baseline",
    log: bool = True,
    xlabel: str = "training step",
    ylabel: str = "loss",
):
    """Plot a loss history against the training step, step 1 first.

    Parameters
    ----------
    losses : (N,) array of finite losses, one per step (positive if ``log``).
    ax : matplotlib Axes or None.
    label : legend entry.
    baseline : float or None, a reference loss drawn as a dotted horizontal line (for example
        the loss of always predicting the mean).
    baseline_label : legend entry of the baseline.
    log : bool, use a log y-axis.
    xlabel, ylabel : axis labels (give units, e.g. "loss (nats per character)").

    Returns the axes.
    """
    y = _as_curve("losses", losses, {}, positive=log)
    ax = _new_axes(ax)
    ax.plot(np.arange(1, y.size + 1), y, label=label)
    if baseline is not None:
        b = _as_curve("baseline", [v.real("baseline", baseline)], {}, positive=log)[0]
        ax.axhline(b, linestyle=":", color="0.3", label=baseline_label)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{ylabel} (log scale)" if log else ylabel)
    if label is not None or baseline is not None:
        ax.legend()
    return ax


def loglog_slope(sizes, values) -> float:
    """Growth exponent ``p`` of ``values ~ c * sizes**p``: the least-squares slope in log-log.

    sizes, values : (N,) arrays of positive numbers, N >= 2, at least two distinct sizes.
    """
    dims: v.Dims = {}
    size = _as_curve("sizes", sizes, dims, positive=True)
    value = _as_curve("values", values, dims, positive=True)
    if np.unique(size).size < 2:
        raise ValueError(f"sizes: expected at least two distinct values, got {np.unique(size)}")
    slope, _ = np.polyfit(np.log(size), np.log(value), 1)
    return float(slope)


def plot_scaling(sizes, values, ax=None, *, label: str, xlabel: str, ylabel: str):
    """Plot a cost against a problem size on log-log axes, the fitted exponent in the legend.

    A cost growing like ``size**p`` is a straight line of slope ``p``.

    sizes, values : (N,) positive arrays (for example T and seconds).
    label : name of the curve; the legend reads "label (slope p)".
    xlabel, ylabel : axis labels with units, e.g. "sequence length T (steps)", "time (s)".

    Returns the axes.
    """
    slope = loglog_slope(sizes, values)
    sizes = np.asarray(sizes, dtype=float)
    ax = _new_axes(ax)
    ax.plot(
        sizes,
        np.asarray(values, dtype=float),
        marker="o",
        markersize=4,
        label=f"{label} (slope {slope:.2f})",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = np.unique(np.concatenate([line.get_xdata() for line in ax.get_lines()]))
    ax.set_xticks(ticks, labels=[f"{tick:g}" for tick in ticks])  # the measured sizes
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    return ax
