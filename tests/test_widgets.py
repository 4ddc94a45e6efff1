"""bptt.widgets: the static (kernel-free) slider and the live ipywidgets slider."""

from __future__ import annotations

import base64
import re
import shutil

import matplotlib.pyplot as plt
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bptt import widgets

SMALL = {"figsize": (1.6, 1.2), "dpi": 20}  # tiny frames keep the tests fast
PNG_MAGIC = b"\x89PNG"


class Recorder:
    """A draw function that remembers the values it was called with and draws a line at them."""

    def __init__(self):
        self.values = []

    def __call__(self, ax, value):
        self.values.append(value)
        ax.plot([0.0, 1.0], [0.0, value], linewidth=4)
        ax.set_ylim(-2.0, 2.0)


def frame_sources(html):
    """{frame index: data URI} of the frames embedded in a static slider."""
    found = re.findall(r'frames\[(\d+)\] = "(data:image/png;base64,[^"]*)"', html)
    return {int(i): data.replace("\\\n", "") for i, data in found}


def png_bytes(uri):
    return base64.b64decode(uri.split(",", 1)[1])


# --------------------------------------------------------------------------- static slider


def test_static_slider_has_one_distinct_frame_per_value_and_a_stable_container():
    draw = Recorder()
    values = [-1.0, 0.0, 1.0]
    before = plt.get_fignums()
    slider = widgets.static_slider(draw, values, default=0.0, label="w", name="demo", **SMALL)

    assert plt.get_fignums() == before, "the frames' figure must be closed"
    assert draw.values == values, "one draw per value, in order"
    assert slider.values == tuple(values) and slider.default_index == 1
    html = slider._repr_html_()
    assert html.startswith('<div class="bptt-static-slider" id="bptt-slider-demo"')
    assert 'data-frames="3"' in html and 'data-default-frame="1"' in html
    assert slider.element_id == "bptt-slider-demo"
    assert not re.search(r"[0-9a-f]{32}", html)
    frames = frame_sources(html)
    assert sorted(frames) == [0, 1, 2]
    assert all(png_bytes(uri).startswith(PNG_MAGIC) for uri in frames.values())
    assert len(set(frames.values())) == 3, "different values must give different frames"
    # the <img> tag shows the default frame without JavaScript, with an alt text and its value
    assert f'<img class="bptt-slider-frame" src="{frames[1]}"' in html
    assert 'alt="the figure for each value of w (w = 0)"' in html
    # a labelled range input that starts at the default, its value read out, two step buttons
    assert '<label for="bptt-slider-demo-input"' in html and ">w</label>" in html
    assert '<input type="range" id="bptt-slider-demo-input" min="0" max="2" step="1" value="1"' in html
    assert '<output for="bptt-slider-demo-input"' in html and ">w = 0</output>" in html
    assert html.count("<button") == 2
    assert 'title="Previous frame"' in html and 'title="Next frame"' in html
    # offline: nothing but the frames' data URIs, no link to anywhere
    assert "http" not in html
    assert repr(slider) == "<StaticSlider 'demo': 3 frames of w from -1 to 1, starting at 0>"


@settings(max_examples=8)
@given(
    steps=st.lists(st.floats(0.05, 2.0), min_size=0, max_size=3),
    start=st.floats(-3.0, 3.0),
    pick=st.integers(0, 10),
)
def test_static_slider_frames_follow_values(steps, start, pick):
    values = start + np.concatenate([[0.0], np.cumsum(steps)])
    index = pick % values.size
    draw = Recorder()
    slider = widgets.static_slider(
        draw, values, default=float(values[index]), label="v", name="prop", **SMALL
    )
    assert np.allclose(draw.values, values)
    assert slider.default_index == index
    assert sorted(frame_sources(slider.html)) == list(range(values.size))
    assert f'data-default-frame="{index}"' in slider.html


def test_static_slider_accepts_integer_values():
    slider = widgets.static_slider(
        Recorder(), [1, 2, 3], default=3, label="k", name="ints", **SMALL
    )
    assert slider.values == (1.0, 2.0, 3.0) and slider.default_index == 2


def test_static_slider_frames_are_drawn_at_twice_their_layout_size():
    slider = widgets.static_slider(
        Recorder(), [0.0, 1.0], default=0.0, label="w", name="sharp", figsize=(2.0, 1.0)
    )
    png = png_bytes(frame_sources(slider.html)[0])
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (400, 200), "dpi 200: twice the 100 CSS px per inch"
    assert 'width="200" height="100"' in slider.html


def test_static_slider_takes_an_alt_text():
    slider = widgets.static_slider(
        Recorder(), [0.0, 1.0], default=1.0, label="w", name="alt", alt="a line of slope w", **SMALL
    )
    assert 'alt="a line of slope w (w = 1)"' in slider.html
    with pytest.raises(TypeError, match="alt: expected a non-empty string or None"):
        widgets.static_slider(Recorder(), [0.0, 1.0], default=1.0, label="w", name="x", alt="", **SMALL)


def test_static_slider_refuses_frames_beyond_the_embed_limit():
    with pytest.raises(ValueError, match="embed_limit_mb: .* holds only 0 of the 2 frames"):
        widgets.static_slider(
            Recorder(), [0.0, 1.0], default=0.0, label="w", name="big", embed_limit_mb=1e-6, **SMALL
        )


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"draw": 3}, TypeError, r"draw: expected a callable draw\(ax, value\), got int"),
        ({"values": []}, ValueError, r"values: expected shape \(N,\) with every size >= 1, got shape \(0,\)"),
        ({"values": [[0.0, 1.0]]}, ValueError, r"values: expected a 1-D array of shape \(N,\)"),
        ({"values": ["a", "b"]}, TypeError, r"values: expected real numbers .* dtype <U1"),
        ({"values": [True, False]}, TypeError, r"values: expected real numbers .* dtype bool"),
        ({"values": [0.0, np.nan]}, ValueError, r"values: expected finite values"),
        ({"values": [1.0, 0.0]}, ValueError, r"values: expected strictly increasing values"),
        ({"values": [0.0, 0.0]}, ValueError, r"values: expected strictly increasing values"),
        ({"default": 0.5}, ValueError, r"default: expected one of values \[0.0, 1.0\], got 0.5"),
        ({"default": "0"}, TypeError, r"default: expected a real number"),
        ({"label": ""}, TypeError, r"label: expected a non-empty string"),
        ({"label": 1}, TypeError, r"label: expected a non-empty string"),
        ({"name": "has space"}, ValueError, r"name: expected letters, digits or underscores"),
        ({"name": "1abc"}, ValueError, r"name: expected letters, digits or underscores"),
        ({"name": None}, ValueError, r"name: expected letters, digits or underscores"),
        ({"figsize": 3}, TypeError, r"figsize: expected \(width, height\) in inches, got 3"),
        ({"figsize": (3, 0)}, ValueError, r"figsize\[1\]: expected a finite number > 0"),
        ({"dpi": 0}, ValueError, r"dpi: expected an integer >= 1, got 0"),
        ({"dpi": 50.5}, TypeError, r"dpi: expected an integer >= 1"),
        ({"fps": 0}, ValueError, r"fps: expected a finite number > 0"),
        ({"embed_limit_mb": -1}, ValueError, r"embed_limit_mb: expected a finite number > 0"),
    ],
)
def test_static_slider_rejects_bad_arguments(change, error, message):
    arguments = {
        "draw": Recorder(),
        "values": [0.0, 1.0],
        "default": 0.0,
        "label": "w",
        "name": "bad",
        **SMALL,
        **change,
    }
    draw = arguments.pop("draw")
    values = arguments.pop("values")
    with pytest.raises(error, match=message):
        widgets.static_slider(draw, values, **arguments)


# --------------------------------------------------------------------------- live slider


def test_live_slider_draws_at_the_default_and_redraws_on_every_move():
    draw = Recorder()
    before = plt.get_fignums()
    widget = widgets.live_slider(
        draw, [0.5, 1.0, 1.5], default=0.9, label="|w|", steps=50, figsize=SMALL["figsize"]
    )
    assert draw.values == [0.9], "the figure is drawn once at the default when created"
    slider = widget.children[0]
    assert (slider.min, slider.max, slider.value, slider.description) == (0.5, 1.5, 0.9, "|w|")
    assert slider.step == pytest.approx(0.02)
    slider.value = 1.3
    assert draw.values == [0.9, 1.3]
    assert plt.get_fignums() == before, "each redraw closes its figure"


def test_live_slider_with_a_single_value_is_fixed_at_it():
    draw = Recorder()
    widget = widgets.live_slider(draw, [2.0], default=2.0, label="w", figsize=SMALL["figsize"])
    assert draw.values == [2.0]
    assert (widget.children[0].min, widget.children[0].max) == (2.0, 2.0)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"draw": None}, TypeError, r"draw: expected a callable"),
        ({"values": [1.0, 0.5]}, ValueError, r"values: expected strictly increasing values"),
        ({"default": 2.0}, ValueError, r"default: expected a value in \[0, 1\], got 2.0"),
        ({"default": True}, TypeError, r"default: expected a real number, got True"),
        ({"label": "  "}, TypeError, r"label: expected a non-empty string"),
        ({"steps": 0}, ValueError, r"steps: expected an integer >= 1, got 0"),
        ({"figsize": (1, 2, 3)}, TypeError, r"figsize: expected \(width, height\)"),
    ],
)
def test_live_slider_rejects_bad_arguments(change, error, message):
    arguments = {"draw": Recorder(), "values": [0.0, 1.0], "default": 0.5, "label": "w", **change}
    draw = arguments.pop("draw")
    values = arguments.pop("values")
    with pytest.raises(error, match=message):
        widgets.live_slider(draw, values, **arguments)


# --------------------------------------------------------------------------- in a browser


def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("chrome")


@pytest.mark.slow
def test_static_slider_moves_in_a_browser_without_a_kernel():
    """The published book has no kernel: moving the range input must swap the image."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if chromium() is None:
        pytest.skip("no chromium on this machine")
    slider = widgets.static_slider(
        Recorder(), [-1.0, 0.0, 1.0], default=0.0, label="w", name="browser", **SMALL
    )
    frames = frame_sources(slider.html)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.set_content(f"<html><body>{slider.html}</body></html>")
            container = page.locator("#bptt-slider-browser.bptt-static-slider")
            source = "document.querySelector('#bptt-slider-browser img').src"
            page.wait_for_function(f"{source} === {frames[1]!r}")
            assert container.locator("input[type=range]").input_value() == "1"
            for index in (2, 0):
                container.locator("input[type=range]").fill(str(index))
                page.wait_for_function(f"{source} === {frames[index]!r}")
            assert container.locator("output").inner_text() == "w = -1"
            container.locator("button[title='Next frame']").click()
            page.wait_for_function(f"{source} === {frames[1]!r}")
            assert container.locator("output").inner_text() == "w = 0"
        finally:
            browser.close()
