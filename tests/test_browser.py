"""The published book in a real browser: every page of the toc opened in headless Chromium.

The built HTML is served on 127.0.0.1 and nothing may leave it: every other request is blocked
and recorded. For every page: it loads, no JavaScript errors, math typeset by the local MathJax,
figures load, launch buttons point at this repository, branch and notebook. For the book: search
finds a term, the kernel-free slider of chapter 6 changes its figure, two screenshots are saved
into test-artifacts/screenshots/ for review.

Needs Debian's Chromium (`sudo apt-get install chromium`; .ci/run installs it); skipped without.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from browser_helpers import (
    INSTALL_HINT,
    LAUNCH_ARGS,
    PageVisit,
    chromium_executable,
    is_widget_cdn,
    serve_directory,
    visit,
)
from course import ROOT, config, read_notebook, repository, toc_files

pytestmark = pytest.mark.slow

PAGES = toc_files()
CHAPTERS = [page for page in PAGES if page.startswith("chapters/")]
SLIDER_PAGE = "chapters/06_vanishing_exploding"
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
# Until the chapters exist the intro is the only page that says "backpropagation" for sure.
SEARCH_TERM, SEARCH_HIT = (
    ("gradient", "chapters/") if CHAPTERS else ("backpropagation", "intro.html")
)
# The mime type myst-nb renders from an output that holds several: the first one present here
# (its HTML render priority). An output is a figure on the page when that one is an image.
RENDER_ORDER = (
    "application/vnd.jupyter.widget-view+json",
    "application/javascript",
    "text/html",
    "image/svg+xml",
    "image/png",
    "image/gif",
    "image/jpeg",
    "text/markdown",
    "text/latex",
    "text/plain",
)
HIDDEN_OUTPUT_TAGS = {"remove-cell", "remove-output"}


def screenshot_pages() -> list[str]:
    """The intro and the first chapter (before chapters exist: the next page of the toc)."""
    second = CHAPTERS[:1] or PAGES[1:2]
    return [PAGES[0], *second]


def screenshot_path(page: str) -> Path:
    return SCREENSHOTS / (page.replace("/", "_") + ".png")


@dataclass
class BookInBrowser:
    base_url: str
    pages: dict[str, PageVisit]
    search: PageVisit


def read_search_results(page) -> dict:
    """Wait until Sphinx's search has finished; return its summary and the result links."""
    page.wait_for_function(
        "() => document.querySelector('#search-results h2')?.textContent === 'Search Results'"
    )
    return {
        "summary": page.inner_text("#search-results .search-summary"),
        "links": page.eval_on_selector_all(
            "#search-results ul.search li a", "els => els.map(a => a.href)"
        ),
    }


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the whole module (skips, saying how to install it, without one)."""
    executable = chromium_executable()
    if executable is None:
        pytest.skip(f"the browser test needs Chromium, which is not installed; {INSTALL_HINT}")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def book(browser, built_book) -> BookInBrowser:
    """Every toc page and one search, each visited once."""
    shots = {page: screenshot_path(page) for page in screenshot_pages()}
    for path in shots.values():
        path.unlink(missing_ok=True)
    with serve_directory(built_book) as base_url:
        pages = {
            page: visit(browser, base_url, f"{page}.html", screenshot=shots.get(page))
            for page in PAGES
        }
        search = visit(browser, base_url, f"search.html?q={SEARCH_TERM}", probe=read_search_results)

    # For review (CI uploads test-artifacts/): which pages asked for which outside files.
    requested = {page: v.external_requests for page, v in pages.items() if v.external_requests}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "browser-external-requests.json").write_text(
        json.dumps(requested, indent=2) + "\n"
    )
    return BookInBrowser(base_url, pages, search)


def loaded(visit_: PageVisit) -> PageVisit:
    """The visit, after asserting that the page itself loaded and could be inspected."""
    assert visit_.problem is None, f"{visit_.url} could not be opened: {visit_.problem}"
    return visit_


def javascript_errors(visit_: PageVisit) -> list[str]:
    return visit_.page_errors + visit_.console_errors


def image_outputs(notebook: Path) -> int:
    """How many figures the notebook's stored outputs hold (cells the book removes excluded)."""
    count = 0
    for cell in read_notebook(notebook)["cells"]:
        if HIDDEN_OUTPUT_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            continue
        for output in cell.get("outputs", []):
            shown = next((mime for mime in RENDER_ORDER if mime in output.get("data", {})), "")
            count += shown.startswith("image/")
    return count


def launch_urls(page: str) -> tuple[str, str]:
    """The Binder and Colab URLs of a notebook page, from _config.yml."""
    url, branch = repository()
    org_repo = urlsplit(url).path.strip("/")
    settings = config()
    buttons = settings["launch_buttons"]
    prefix = settings["repository"].get("path_to_book", "").strip("/")
    notebook = f"{prefix}/{page}.ipynb" if prefix else f"{page}.ipynb"
    interface = {"classic": "tree", "jupyterlab": "lab/tree"}[buttons["notebook_interface"]]
    binder_hub, colab_site = buttons["binderhub_url"].rstrip("/"), buttons["colab_url"].rstrip("/")
    binder = f"{binder_hub}/v2/gh/{org_repo}/{branch}?urlpath={interface}/{notebook}"
    colab = f"{colab_site}/github/{org_repo}/blob/{branch}/{notebook}"
    return binder, colab


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_every_local_file(book, page):
    failed = loaded(book.pages[page]).failed_local
    assert not failed, f"{page}: local files failed to load:\n" + "\n".join(failed)


@pytest.mark.parametrize("page", PAGES)
def test_no_javascript_errors(book, page):
    errors = javascript_errors(loaded(book.pages[page]))
    assert not errors, f"{page}: JavaScript errors in the console:\n" + "\n".join(errors)


@pytest.mark.parametrize("page", PAGES)
def test_nothing_is_loaded_from_outside_but_widget_cdn_files(book, page):
    outside = [url for url in loaded(book.pages[page]).external_requests if not is_widget_cdn(url)]
    assert not outside, (
        f"{page} loads files from outside the book (it must work offline): {outside}"
    )


@pytest.mark.parametrize("page", PAGES)
def test_math_is_typeset_by_the_local_mathjax(book, page):
    """Every math element Sphinx wrote (span.math, div.math) holds an mjx-container, none fails."""
    visit_ = loaded(book.pages[page])
    dom = visit_.dom
    if not dom["math"]:
        return  # a page without math need not load MathJax
    assert visit_.mathjax_script_status == 200, (
        f"{page} has math but the local mathjax/tex-chtml.js was not served "
        f"(status {visit_.mathjax_script_status})"
    )
    assert str(dom["mathjaxVersion"]).startswith("3."), (
        f"{page}: MathJax 3 did not start: {dom['mathjaxVersion']}"
    )
    assert dom["typesetDone"], f"{page}: MathJax did not finish typesetting"
    assert dom["mathTypeset"] == dom["math"], (
        f"{page}: only {dom['mathTypeset']} of {dom['math']} formulas typeset"
    )
    assert dom["mathErrors"] == 0, (
        f"{page}: {dom['mathErrors']} formulas failed to typeset (mjx-merror)"
    )


def test_the_book_has_typeset_math(book):
    assert sum(loaded(v).dom["mathTypeset"] for v in book.pages.values()) > 0, (
        "no page shows typeset math"
    )


@pytest.mark.parametrize("page", PAGES)
def test_figures_are_present_and_load(book, page):
    images = loaded(book.pages[page]).dom["images"]
    broken = [
        image["src"][:80] or "(no src)"
        for image in images
        if not (image["src"] and image["loaded"])
    ]
    assert not broken, f"{page}: images that do not load: {broken}"
    notebook = ROOT / f"{page}.ipynb"
    if notebook.exists():
        figures = [
            image for image in images if image["output"] and not image["src"].startswith("data:")
        ]
        expected = image_outputs(notebook)
        assert len(figures) == expected, (
            f"{page}: {expected} figures in the notebook, {len(figures)} on the page"
        )


@pytest.mark.parametrize("page", PAGES)
def test_launch_buttons_point_at_the_repository_branch_and_notebook(book, page):
    links = loaded(book.pages[page]).dom["links"]
    url, _ = repository()
    assert url in links, f"{page}: no repository button linking {url}"
    buttons = config()["launch_buttons"]
    binder = {link for link in links if link.startswith(buttons["binderhub_url"])}
    colab = {link for link in links if link.startswith(buttons["colab_url"])}
    if (ROOT / f"{page}.ipynb").exists():
        expected_binder, expected_colab = launch_urls(page)
        assert binder == {expected_binder}, (
            f"{page}: Binder links {binder}, expected {expected_binder}"
        )
        assert colab == {expected_colab}, f"{page}: Colab links {colab}, expected {expected_colab}"
    else:
        assert not binder | colab, (
            f"{page} is not a notebook but has launch links: {binder | colab}"
        )


def test_search_finds_a_term(book):
    result = loaded(book.search).probe
    assert result["links"], f"searching {SEARCH_TERM!r} found nothing: {result['summary']}"
    pages = [link.removeprefix(book.base_url) for link in result["links"]]
    assert any(page.startswith(SEARCH_HIT) for page in pages), (
        f"searching {SEARCH_TERM!r} did not find {SEARCH_HIT}; it found {pages}"
    )
    errors = javascript_errors(book.search)
    assert not errors, "JavaScript errors on the search page:\n" + "\n".join(errors)


def test_static_slider_changes_the_figure(book):
    if SLIDER_PAGE not in PAGES:
        pytest.skip(f"{SLIDER_PAGE} (the |w|^k slider) is not in _toc.yml yet")
    assert loaded(book.pages[SLIDER_PAGE]).sliders, f"{SLIDER_PAGE} has no div.bptt-static-slider"
    for page, visit_ in book.pages.items():
        for number, slider in enumerate(visit_.sliders, start=1):
            where = f"{page}, slider {number}"
            assert "problem" not in slider, f"{where}: {slider.get('problem')}"
            assert slider["frames"] >= 2, (
                f"{where}: a slider needs at least two frames, has {slider['frames']}"
            )
            assert slider["first"]["loaded"], f"{where}: the first figure does not load"
            assert slider["value_after_key"] == slider["expected_after_key"], (
                f"{where}: the arrow key did not move the slider one frame from "
                f"{slider['value_before_key']} (it shows {slider['value_after_key']})"
            )
            assert slider["moved"]["src"] != slider["first"]["src"], (
                f"{where}: moving it kept the same figure"
            )
            assert slider["moved"]["loaded"], f"{where}: the figure after moving does not load"
            assert slider["has_back_button"], (
                f"{where}: the animation has no 'Previous frame'/'Next frame' button"
            )
            assert slider["back"]["src"] == slider["first"]["src"], (
                f"{where}: the frame button did not bring back the first figure"
            )


def test_screenshots_are_saved_for_review(book):
    for page in screenshot_pages():
        path = screenshot_path(page)
        assert path.exists(), f"no screenshot of {page} at {path.relative_to(ROOT)}"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"


# The instrument itself: `visit` must see what a broken page does, and nothing on a clean one.


def jshtml_slider(frames_differ: bool) -> str:
    """A matplotlib to_jshtml animation of three frames, wrapped like the course's static slider."""
    from matplotlib.animation import FuncAnimation
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 1.5), dpi=40)
    axes = figure.add_subplot()
    axes.set_ylim(0, 3)
    (line,) = axes.plot([0, 1], [0, 0])
    animation = FuncAnimation(
        figure, lambda i: line.set_ydata([0, i if frames_differ else 1]), frames=3
    )
    return f'<div class="bptt-static-slider">{animation.to_jshtml()}</div>'


@pytest.fixture(scope="module")
def probe_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("probe-site")
    (site / "clean.html").write_text(f"<!doctype html><title>clean</title>{jshtml_slider(True)}")
    (site / "broken.html").write_text(
        "<!doctype html><title>broken</title>"
        "<script>console.error('logged on purpose')</script>"
        "<script src='https://cdn.example.org/lib.js'></script>"
        "<img src='missing.png'>"
        f"{jshtml_slider(False)}"
        "<script>throw new Error('thrown on purpose')</script>"
    )
    return site


def test_visit_finds_nothing_wrong_with_a_clean_page(browser, probe_site):
    with serve_directory(probe_site) as base_url:
        clean = loaded(visit(browser, base_url, "clean.html"))
    assert not javascript_errors(clean) and not clean.failed_local, clean
    assert all(is_widget_cdn(url) for url in clean.external_requests), clean.external_requests
    (slider,) = clean.sliders
    assert slider["frames"] == 3 and slider["value_after_key"] == "1", slider
    assert slider["moved"]["src"] != slider["first"]["src"] == slider["back"]["src"], slider


def test_visit_reports_what_a_broken_page_does(browser, probe_site):
    with serve_directory(probe_site) as base_url:
        broken = loaded(visit(browser, base_url, "broken.html"))
    assert any("thrown on purpose" in error for error in broken.page_errors), broken.page_errors
    assert any("logged on purpose" in error for error in broken.console_errors), (
        broken.console_errors
    )
    assert any("cdn.example.org" in error for error in broken.console_errors), broken.console_errors
    assert "https://cdn.example.org/lib.js" in broken.external_requests
    assert any("missing.png: HTTP 404" in failure for failure in broken.failed_local), (
        broken.failed_local
    )
    assert {"src": "missing.png", "loaded": False, "output": False} in broken.dom["images"]
    (slider,) = broken.sliders
    assert slider["moved"]["src"] == slider["first"]["src"], (
        "a frozen slider must be reported as frozen"
    )
