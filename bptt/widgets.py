"""Sliders for the course's figures: live in a kernel, and still working in the static book.

A slider figure is one function ``draw(ax, value)`` that draws the figure for one value of a
parameter into a matplotlib axes (it sets its own labels and limits). This module turns it into

* :func:`static_slider` - precomputed frames, one per value, shown by matplotlib's
  ``to_jshtml`` player: a range input whose movement swaps the displayed image. It needs no
  kernel, so it is what the published HTML book shows. Its HTML sits in
  ``<div class="bptt-static-slider" id="bptt-slider-NAME">``; the image starts at the
  default value and is also written into the ``<img>`` tag itself, so a viewer that runs no
  JavaScript (GitHub, nbviewer) still shows the figure instead of an empty box. The player's
  buttons are plain text symbols: nothing is loaded from a CDN, the book works offline.
* :func:`live_slider` - an ipywidgets slider whose every move redraws the figure, for a
  running notebook (Jupyter, Colab, Binder). It draws once at the default value as soon as it
  is created.

The first user is the |w|^k figure of chapter 6. A browser moves the static slider by setting
the value of its ``input[type=range]`` (a frame index 0 ... N-1) and firing an ``input``
event; the ``src`` of the ``img`` in the same container then changes to that frame.

Only matplotlib and numpy are needed for the static slider; ipywidgets and IPython are
imported by :func:`live_slider` when it is called.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation

from bptt import _validate

Draw = Callable[[mpl.axes.Axes, float], object]

CONTAINER_CLASS = "bptt-static-slider"
"""CSS class of the ``<div>`` around every static slider (browser tests select it)."""

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_ANIM_ID = re.compile(r'<img id="_anim_img([0-9a-f]+)">')
_FRAME = re.compile(r'frames\[(\d+)\] = "(data:image/png;base64,[^"]*)"')
_ICON_CSS = re.compile(r'<link rel="stylesheet"\s+href="https?://[^"]*font-awesome[^"]*">')
_ICON = re.compile(r'<i class="fa (fa-[a-z-]+)( fa-flip-horizontal)?"></i>')
_BUTTON_TEXT = {
    "fa-minus": "&minus;",
    "fa-fast-backward": "|&#9664;",
    "fa-step-backward": "&#9664;",
    "fa-play fa-flip-horizontal": "&#9665;",
    "fa-pause": "||",
    "fa-play": "&#9655;",
    "fa-step-forward": "&#9654;",
    "fa-fast-forward": "&#9654;|",
    "fa-plus": "+",
}
"""Text for the player's buttons: matplotlib's icons come from a CDN stylesheet, which the
offline book must not load."""


# --------------------------------------------------------------------------- checks


def _check_draw(draw: object) -> Draw:
    if not callable(draw):
        raise TypeError(f"draw: expected a callable draw(ax, value), got {type(draw).__name__}")
    return draw


def _check_values(values: object) -> np.ndarray:
    """``values`` as a 1-D, non-empty, finite, strictly increasing float array of shape (N,)."""
    array = np.asarray(values)
    if array.dtype.kind not in "iuf":
        raise TypeError(
            f"values: expected real numbers in an array of shape (N,), got dtype {array.dtype} "
            f"with shape {array.shape}"
        )
    array = _validate.float_array("values", array.astype(float), ("N",))
    if np.any(np.diff(array) <= 0):
        raise ValueError(f"values: expected strictly increasing values, got {array.tolist()}")
    return array


def _check_label(label: object) -> str:
    if not isinstance(label, str) or not label.strip():
        raise TypeError(f"label: expected a non-empty string, got {label!r}")
    return label


def _check_figsize(figsize: object) -> tuple[float, float]:
    if not isinstance(figsize, Sequence) or len(figsize) != 2:
        raise TypeError(f"figsize: expected (width, height) in inches, got {figsize!r}")
    width = _validate.positive_float("figsize[0]", figsize[0])
    height = _validate.positive_float("figsize[1]", figsize[1])
    return width, height


def _value_text(label: str, value: float) -> str:
    return f"{label} = {value:.3g}"


# --------------------------------------------------------------------------- drawing


def _render(fig, ax, draw: Draw, label: str, value: float) -> None:
    """Clear ``ax``, let ``draw`` draw the figure for ``value`` and title it with the value."""
    ax.clear()
    draw(ax, value)
    fig.suptitle(_value_text(label, value))


# --------------------------------------------------------------------------- static


@dataclass(frozen=True)
class StaticSlider:
    """A kernel-free slider: precomputed frames in a ``to_jshtml`` player.

    Attributes
    ----------
    html : the HTML to display (Jupyter shows it through ``_repr_html_``).
    name : the stable id; the container is ``<div id="bptt-slider-NAME">``.
    values : (N,) the parameter value of each frame, frame ``i`` shows ``values[i]``.
    default_index : the frame shown first, ``values[default_index]`` is the default.
    label : the parameter's name, as printed in the figure's title.
    """

    html: str
    name: str
    values: tuple[float, ...]
    default_index: int
    label: str

    @property
    def element_id(self) -> str:
        return f"bptt-slider-{self.name}"

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return (
            f"<StaticSlider {self.name!r}: {len(self.values)} frames of {self.label} "
            f"from {self.values[0]:.3g} to {self.values[-1]:.3g}, "
            f"starting at {self.values[self.default_index]:.3g}>"
        )


def _jshtml(draw: Draw, values: np.ndarray, label: str, figsize, dpi: int, fps: float,
            embed_limit_mb: float) -> str:
    """matplotlib's ``to_jshtml`` player with one frame per value (the figure is closed)."""
    fig, ax = plt.subplots(figsize=figsize, dpi=dpi, layout="constrained")
    try:
        animation = FuncAnimation(
            fig,
            lambda i: _render(fig, ax, draw, label, float(values[i])),
            frames=len(values),
            init_func=lambda: None,
            interval=1000.0 / fps,
            repeat=False,
        )
        with mpl.rc_context({"animation.embed_limit": embed_limit_mb,
                             "savefig.dpi": dpi, "savefig.bbox": "standard"}):
            return animation.to_jshtml(fps=fps)
    finally:
        plt.close(fig)


def _offline_buttons(html: str) -> str:
    """Replace the CDN icon font of the player's buttons by plain text symbols."""
    html = _ICON_CSS.sub("", html)
    return _ICON.sub(lambda m: _BUTTON_TEXT[m.group(1) + (m.group(2) or "")], html)


def _stabilise(html: str, name: str, default_index: int, n_frames: int, embed_limit_mb: float,
               label: str) -> str:
    """Give the player a stable id, start it at the default frame, show that frame in the
    ``<img>`` tag even where no script runs, and load nothing from the internet."""
    found = _ANIM_ID.search(html)
    frames = {int(i): data.replace("\\\n", "") for i, data in _FRAME.findall(html)}
    if found is None:
        raise RuntimeError(
            "matplotlib's to_jshtml output no longer has the expected <img id=...> tag; "
            "bptt.widgets needs updating for this matplotlib version"
        )
    if len(frames) != n_frames:
        raise ValueError(
            f"embed_limit_mb: {embed_limit_mb} MB holds only {len(frames)} of the {n_frames} "
            "frames; raise embed_limit_mb, or use fewer values, a smaller figsize or a lower dpi"
        )
    html = _offline_buttons(html.replace(found.group(1), name))
    alt = f"the figure at its default value of {label}"
    html = html.replace(
        f'<img id="_anim_img{name}">',
        f'<img id="_anim_img{name}" src="{frames[default_index]}" alt="{alt}">',
    )
    start = (
        "<script>\n(function start() {\n"
        f'  var anim = window["anim{name}"];\n'
        "  if (anim === undefined) { setTimeout(start, 20); return; }\n"
        f"  anim.set_frame({default_index});\n"
        "})();\n</script>"
    )
    return (
        f'<div class="{CONTAINER_CLASS}" id="bptt-slider-{name}" data-frames="{n_frames}" '
        f'data-default-frame="{default_index}">\n{html}\n{start}\n</div>'
    )


def static_slider(draw: Draw, values, *, default: float, label: str, name: str,
                  figsize=(6.0, 3.4), dpi: int = 60, fps: float = 4.0,
                  embed_limit_mb: float = 1.0) -> StaticSlider:
    """Precompute ``draw(ax, v)`` for every ``v`` in ``values`` as a kernel-free slider.

    Parameters
    ----------
    draw : callable ``draw(ax, value)``; draws one frame into a cleared axes (set fixed axis
        limits there, or the frames jump). The figure's title is set to ``"label = value"``.
    values : (N,) strictly increasing real numbers, one frame each (keep N small: every frame
        is a PNG stored in the notebook).
    default : one of ``values``, the frame shown first (and the only one without JavaScript).
    label : the parameter's name in the title, e.g. ``"|w|"``.
    name : a stable id, letters/digits/underscores starting with a letter, unique on its page;
        the container is ``<div class="bptt-static-slider" id="bptt-slider-NAME">``.
    figsize : (width, height) in inches.
    dpi : resolution of the frames (dots per inch); low keeps the notebook small.
    fps : frames per second of the player's "play" button.
    embed_limit_mb : the most megabytes of frames to embed; ValueError if they do not fit.

    Returns a :class:`StaticSlider`; display it (last expression of a cell) to show it.
    """
    draw = _check_draw(draw)
    values = _check_values(values)
    default = _validate.real("default", default)
    matches = np.flatnonzero(np.isclose(values, default, rtol=1e-12, atol=0.0))
    if matches.size == 0:
        raise ValueError(f"default: expected one of values {values.tolist()}, got {default!r}")
    label = _check_label(label)
    if not isinstance(name, str) or _NAME.match(name) is None:
        raise ValueError(
            f"name: expected letters, digits or underscores starting with a letter, got {name!r}"
        )
    figsize = _check_figsize(figsize)
    dpi = _validate.integer("dpi", dpi, minimum=1)
    fps = _validate.positive_float("fps", fps)
    embed_limit_mb = _validate.positive_float("embed_limit_mb", embed_limit_mb)

    html = _jshtml(draw, values, label, figsize, dpi, fps, embed_limit_mb)
    index = int(matches[0])
    html = _stabilise(html, name, index, len(values), embed_limit_mb, label)
    return StaticSlider(html=html, name=name, values=tuple(values.tolist()),
                        default_index=index, label=label)


# --------------------------------------------------------------------------- live


def live_slider(draw: Draw, values, *, default: float, label: str, figsize=(6.0, 3.4),
                steps: int = 100):
    """An ipywidgets slider over ``[min(values), max(values)]`` that redraws on every move.

    Parameters
    ----------
    draw : callable ``draw(ax, value)``, as for :func:`static_slider`.
    values : (N,) strictly increasing real numbers; only their range is used, the live
        slider moves continuously in ``steps`` steps between the first and the last.
    default : the starting value, within that range; the figure is drawn there at once.
    label : the slider's description and the figure's title.
    figsize : (width, height) in inches.
    steps : number of slider steps across the range (N = 1 gives a fixed slider).

    Returns an ``ipywidgets.interactive`` (display it; its ``.children[0]`` is the slider).
    In the static HTML book a widget has no kernel to call: pair it with
    :func:`static_slider`.
    """
    draw = _check_draw(draw)
    values = _check_values(values)
    low, high = float(values[0]), float(values[-1])
    default = _validate.real("default", default)
    if not low <= default <= high:
        raise ValueError(f"default: expected a value in [{low:g}, {high:g}], got {default!r}")
    label = _check_label(label)
    figsize = _check_figsize(figsize)
    steps = _validate.integer("steps", steps, minimum=1)

    import ipywidgets
    from IPython.display import display

    def redraw(value: float) -> None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        _render(fig, ax, draw, label, float(value))
        display(fig)
        plt.close(fig)

    slider = ipywidgets.FloatSlider(
        value=default,
        min=low,
        max=high,
        step=(high - low) / steps if high > low else 1.0,
        description=label,
        readout_format=".3g",
        continuous_update=False,
    )
    return ipywidgets.interactive(redraw, value=slider)

