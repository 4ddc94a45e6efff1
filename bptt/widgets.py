"""Sliders for the course's figures: live in a kernel, and still working in the static book.

A slider figure is one function ``draw(ax, value)`` that draws the figure for one value of a
parameter into a matplotlib axes (it sets its own labels and limits). This module turns it into

* :func:`static_slider` - precomputed frames, one per value, behind a labelled range input: a
  kernel-free interactive figure, so it is what the published HTML book shows. Its HTML sits in
  ``<div class="bptt-static-slider" id="bptt-slider-NAME">``: the frame (an ``<img>`` at twice
  the resolution it is displayed at, as wide as the text column, with an alt text), then a row
  of controls: a "Previous frame" button, the parameter's name as the ``<label>`` of an
  ``<input type="range">`` (finger-sized, it moves by touch, mouse and arrow keys), the current
  value (``<output>``, "|w| = 0.9") and a "Next frame" button. The image starts at the default
  value and is written into the ``<img>`` tag itself, so a viewer that runs no JavaScript
  (GitHub, nbviewer) still shows the figure. Nothing is loaded from the internet.
* :func:`live_slider` - an ipywidgets slider whose every move redraws the figure, for a
  running notebook (Jupyter, Colab, Binder). It draws once at the default value as soon as it
  is created.

Legible on a phone: the frame is drawn at ``figsize`` inches (default 5 x 3.2, smaller than a
page-wide figure, so its fonts stay readable when a 390 px screen shrinks it) and ``dpi`` dots
per inch (default 200, twice the 100 CSS pixels per inch it is laid out at).

A browser moves the static slider by setting the value of its ``input[type=range]`` (a frame
index 0 ... N-1) and firing an ``input`` event; the ``src`` of the ``img`` in the same container
then changes to that frame (tests/test_browser.py and tests/test_widgets.py do this).

Only matplotlib and numpy are needed for the static slider; ipywidgets and IPython are
imported by :func:`live_slider` when it is called.
"""

from __future__ import annotations

import base64
import html as html_lib
import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

from bptt import _validate

Draw = Callable[[mpl.axes.Axes, float], object]

CONTAINER_CLASS = "bptt-static-slider"
"""CSS class of the ``<div>`` around every static slider (browser tests select it)."""

CSS_PIXELS_PER_INCH = 100
"""A frame of ``figsize`` inches is laid out ``figsize * CSS_PIXELS_PER_INCH`` CSS pixels wide
(at most; it shrinks with the column)."""

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


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
    """A kernel-free slider: precomputed frames behind a labelled range input.

    Attributes
    ----------
    html : the HTML to display (Jupyter shows it through ``_repr_html_``).
    name : the stable id; the container is ``<div id="bptt-slider-NAME">``.
    values : (N,) the parameter value of each frame, frame ``i`` shows ``values[i]``.
    default_index : the frame shown first, ``values[default_index]`` is the default.
    label : the parameter's name, as printed in the figure's title and on the control.
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


def _frames(draw: Draw, values: np.ndarray, label: str, figsize, dpi: int) -> list[str]:
    """One PNG data URI per value, all drawn into one figure (closed afterwards)."""
    fig, ax = plt.subplots(figsize=figsize, dpi=dpi, layout="constrained")
    uris = []
    try:
        for value in values:
            _render(fig, ax, draw, label, float(value))
            buffer = io.BytesIO()
            # the whole canvas, whatever savefig.bbox the course style sets: every frame has
            # exactly the size the slider lays it out at
            with mpl.rc_context({"savefig.bbox": "standard"}):
                fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
            uris.append("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode())
    finally:
        plt.close(fig)
    return uris


_SCRIPT = """<script>
(function () {
  var root = document.getElementById(%(element_id)s);
  if (!root || root.dataset.ready) return;
  root.dataset.ready = "1";
  var frames = [], texts = %(texts)s;
%(frames)s
  var image = root.querySelector("img"), input = root.querySelector("input[type=range]");
  var output = root.querySelector("output"), alt = %(alt)s;
  function show(index) {
    index = Math.max(0, Math.min(frames.length - 1, index));
    input.value = String(index);
    image.src = frames[index];
    image.alt = alt + " (" + texts[index] + ")";
    output.textContent = texts[index];
    input.setAttribute("aria-valuetext", texts[index]);
  }
  input.addEventListener("input", function () { show(Number(input.value)); });
  root.querySelectorAll("button[data-step]").forEach(function (button) {
    button.addEventListener("click", function () {
      show(Number(input.value) + Number(button.dataset.step));
    });
  });
  show(Number(root.dataset.defaultFrame));
})();
</script>"""


def _slider_html(name: str, label: str, values: np.ndarray, uris: list[str], default_index: int,
                 figsize, alt: str) -> str:
    element_id = f"bptt-slider-{name}"
    texts = [_value_text(label, float(v)) for v in values]
    width = round(figsize[0] * CSS_PIXELS_PER_INCH)
    height = round(figsize[1] * CSS_PIXELS_PER_INCH)
    esc = html_lib.escape
    start_text = texts[default_index]
    frames = "\n".join(f'  frames[{i}] = "{uri}";' for i, uri in enumerate(uris))
    script = _SCRIPT % {
        "element_id": json.dumps(element_id),
        "texts": json.dumps(texts),
        "frames": frames,
        "alt": json.dumps(alt),
    }
    button = (
        '<button type="button" data-step="{step}" title="{title}" aria-label="{aria}" '
        'style="min-width:2.75rem;min-height:2.75rem;font-size:1.1rem">{symbol}</button>'
    )
    return (
        f'<div class="{CONTAINER_CLASS}" id="{element_id}" data-frames="{len(uris)}" '
        f'data-default-frame="{default_index}" style="max-width:{round(width * 1.3)}px">\n'
        f'<img class="bptt-slider-frame" src="{uris[default_index]}" width="{width}" '
        f'height="{height}" alt="{esc(alt)} ({esc(start_text)})" '
        'style="display:block;width:100%;height:auto">\n'
        '<div class="bptt-slider-controls" '
        'style="display:flex;flex-wrap:wrap;align-items:center;gap:0.5rem;margin-top:0.4rem">\n'
        + button.format(step=-1, title="Previous frame", aria=esc(f"previous value of {label}"),
                        symbol="&#9664;")
        + f'\n<label for="{element_id}-input" style="font-weight:600">{esc(label)}</label>\n'
        f'<input type="range" id="{element_id}-input" min="0" max="{len(uris) - 1}" step="1" '
        f'value="{default_index}" aria-valuetext="{esc(start_text)}" '
        'style="flex:1 1 6rem;min-width:6rem;height:2.75rem">\n'
        f'<output for="{element_id}-input" style="white-space:nowrap">{esc(start_text)}</output>\n'
        + button.format(step=1, title="Next frame", aria=esc(f"next value of {label}"),
                        symbol="&#9654;")
        + f"\n</div>\n{script}\n</div>"
    )


def static_slider(draw: Draw, values, *, default: float, label: str, name: str,
                  figsize=(5.0, 3.2), dpi: int = 200, fps: float = 4.0,
                  embed_limit_mb: float = 4.0, alt: str | None = None) -> StaticSlider:
    """Precompute ``draw(ax, v)`` for every ``v`` in ``values`` as a kernel-free slider.

    Parameters
    ----------
    draw : callable ``draw(ax, value)``; draws one frame into a cleared axes (set fixed axis
        limits there, or the frames jump). The figure's title is set to ``"label = value"``.
    values : (N,) strictly increasing real numbers, one frame each (keep N small: every frame
        is a PNG stored in the notebook).
    default : one of ``values``, the frame shown first (and the only one without JavaScript).
    label : the parameter's name, e.g. ``"|w|"``: the figure's title, the control's label and
        its value readout.
    name : a stable id, letters/digits/underscores starting with a letter, unique on its page;
        the container is ``<div class="bptt-static-slider" id="bptt-slider-NAME">``.
    figsize : (width, height) in inches; laid out at 100 CSS pixels per inch, shrunk to the
        column. Keep it at most about 5.5 inches wide so the fonts stay legible on a phone.
    dpi : resolution of the frames (dots per inch); 200 is twice the layout resolution.
    fps : kept for compatibility with earlier versions (which had a play button); unused.
    embed_limit_mb : the most megabytes of frames to embed; ValueError if they do not fit.
    alt : what the figure shows, for readers who cannot see it (the current value is appended);
        default: "the figure for each value of LABEL".

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
    _validate.positive_float("fps", fps)
    embed_limit_mb = _validate.positive_float("embed_limit_mb", embed_limit_mb)
    if alt is None:
        alt = f"the figure for each value of {label}"
    elif not isinstance(alt, str) or not alt.strip():
        raise TypeError(f"alt: expected a non-empty string or None, got {alt!r}")

    uris = _frames(draw, values, label, figsize, dpi)
    sizes = np.cumsum([len(uri) for uri in uris])
    fitting = int(np.sum(sizes <= embed_limit_mb * 2**20))
    if fitting < len(uris):
        raise ValueError(
            f"embed_limit_mb: {embed_limit_mb} MB holds only {fitting} of the {len(uris)} "
            "frames; raise embed_limit_mb, or use fewer values, a smaller figsize or a lower dpi"
        )
    index = int(matches[0])
    html = _slider_html(name, label, values, uris, index, figsize, alt)
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

