"""The published book in a real browser, as a reader sees it on a phone (390 px) and a laptop (1280 px).

The built HTML is served on 127.0.0.1 and nothing may leave it: every other request is blocked
and recorded. For every visited page, at both widths: it loads, no JavaScript errors, no request
to another host, math typeset by the local MathJax, figures load and have a real alt text,
nothing is wider than its box unless it scrolls, no Markdown table is printed as text, the menu
and contents buttons open, launch buttons point at this repository, branch and notebook. For
the book: search finds a term and shows one search box, every kernel-free slider moves and is
legible, screenshots of the home page, a chapter with equations and a slider, an exercise and
the appendix are saved into test-artifacts/screenshots/ for review.

A page with findings is saved as test-artifacts/failing-pages/<page>@<width>.png, and every
finding of the run is listed in test-artifacts/browser-findings.json.

By default a fixed sample of the pages is visited at each width (the test budget); set
BPTT_BROWSER_ALL_PAGES=1 (the publish workflow does) to visit every page of the toc.

Needs Debian's Chromium (`sudo apt-get install chromium`; .ci/run installs it); skipped without.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from browser_helpers import (
    INSTALL_HINT,
    LAPTOP,
    LAUNCH_ARGS,
    PHONE,
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
APPENDIX = "chapters/A1_performance"
EXERCISES = [page for page in PAGES if page.startswith("exercises/")]
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
FAILING = ARTIFACTS / "failing-pages"
WIDTHS = (PHONE, LAPTOP)
ALL_PAGES = os.environ.get("BPTT_BROWSER_ALL_PAGES", "") == "1"


def sampled_pages() -> list[str]:
    """The pages visited at each width: all with BPTT_BROWSER_ALL_PAGES=1, else a fixed sample.

    The sample: the home page, the slider chapter, the first exercise, the appendix, the
    bibliography, the API reference and every fifth page of the toc."""
    if ALL_PAGES:
        return list(PAGES)
    wanted = {PAGES[0], SLIDER_PAGE, APPENDIX, "references", "api", *EXERCISES[:1], *PAGES[::5]}
    return [page for page in PAGES if page in wanted]


VISITED = sampled_pages()
VISITS = [(page, width) for width in WIDTHS for page in VISITED]
VISIT_IDS = [f"{page}@{width}" for page, width in VISITS]
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
    """For review: the home page, a chapter with equations and a slider, an exercise, the appendix."""
    wanted = [PAGES[0], SLIDER_PAGE, *EXERCISES[:1], APPENDIX]
    return [page for page in wanted if page in PAGES] or PAGES[:2]


def screenshot_path(page: str, width: int) -> Path:
    return SCREENSHOTS / (page.replace("/", "_") + f"@{width}.png")


@dataclass
class BookInBrowser:
    base_url: str
    pages: dict[tuple[str, int], PageVisit]
    search: dict[int, PageVisit]


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
        # search boxes a reader sees: text fields and the theme's wide "Search Ctrl+K" buttons
        "boxes": page.evaluate("""() => Array.from(document.querySelectorAll(
            'input[type=search], input[name=q], .search-button-field'))
            .filter(el => el.checkVisibility() && el.getBoundingClientRect().width > 0).length"""),
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
    """The sampled pages at both widths and one search per width, each visited once."""
    shots = {(page, width): screenshot_path(page, width)
             for page in screenshot_pages() for width in WIDTHS}
    for path in [*shots.values(), *FAILING.glob("*.png")]:
        path.unlink(missing_ok=True)
    with serve_directory(built_book) as base_url:
        pages = {}
        for width in WIDTHS:
            extra = [page for page, w in shots if w == width and page not in VISITED]
            for page in VISITED + extra:
                pages[page, width] = visit(
                    browser, base_url, f"{page}.html", width=width,
                    screenshot=shots.get((page, width)), failure_screenshots=FAILING,
                )
        search = {
            width: visit(browser, base_url, f"search.html?q={SEARCH_TERM}", width=width,
                         probe=read_search_results, failure_screenshots=FAILING)
            for width in WIDTHS
        }

    # For review (CI uploads test-artifacts/): every finding, and which pages asked for which
    # outside files.
    ARTIFACTS.mkdir(exist_ok=True)
    findings = {
        f"{page}@{width}": {
            "findings": v.findings(),
            "screenshot": str(v.screenshot.relative_to(ROOT)) if v.screenshot else None,
        }
        for (page, width), v in pages.items()
        if v.findings()
    }
    (ARTIFACTS / "browser-findings.json").write_text(json.dumps(findings, indent=2) + "\n")
    requested = {f"{page}@{width}": v.external_requests
                 for (page, width), v in pages.items() if v.external_requests}
    (ARTIFACTS / "browser-external-requests.json").write_text(
        json.dumps(requested, indent=2) + "\n"
    )
    return BookInBrowser(base_url, pages, search)


def loaded(visit_: PageVisit) -> PageVisit:
    """The visit, after asserting that the page itself loaded and could be inspected."""
    assert visit_.problem is None, f"{visit_.url} could not be opened: {visit_.problem}"
    return visit_


def where(visit_: PageVisit) -> str:
    """The page's URL and width and, when it had findings, where its screenshot is."""
    shot = f" (screenshot: {visit_.screenshot.relative_to(ROOT)})" if visit_.screenshot else ""
    return f"{visit_.url} at {visit_.width} px{shot}"


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


@pytest.mark.parametrize(("page", "width"), VISITS, ids=VISIT_IDS)
def test_page_loads_every_local_file(book, page, width):
    visit_ = loaded(book.pages[page, width])
    failed = visit_.failed_local
    assert not failed, f"{where(visit_)}: local files failed to load:\n" + "\n".join(failed)


@pytest.mark.parametrize(("page", "width"), VISITS, ids=VISIT_IDS)
def test_no_javascript_errors(book, page, width):
    visit_ = loaded(book.pages[page, width])
    errors = javascript_errors(visit_)
    assert not errors, f"{where(visit_)}: JavaScript errors in the console:\n" + "\n".join(errors)


@pytest.mark.parametrize(("page", "width"), VISITS, ids=VISIT_IDS)
def test_nothing_is_loaded_from_outside_but_widget_cdn_files(book, page, width):
    visit_ = loaded(book.pages[page, width])
    outside = [url for url in visit_.external_requests if not is_widget_cdn(url)]
    assert not outside, (
        f"{where(visit_)} loads files from another host (it must work offline): {outside}"
    )


@pytest.mark.parametrize(("page", "width"), VISITS, ids=VISIT_IDS)
def test_math_is_typeset_by_the_local_mathjax(book, page, width):
    """Every math element Sphinx wrote (span.math, div.math) holds an mjx-container, none fails."""
    visit_ = loaded(book.pages[page, width])
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


@pytest.mark.parametrize(("page", "width"), VISITS, ids=VISIT_IDS)
def test_figures_are_present_and_load(book, page, width):
    images = loaded(book.pages[page, width]).dom["images"]
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


@pytest.mark.parametrize(("page", "width"), VISITS, ids=VISIT_IDS)
def test_launch_buttons_point_at_the_repository_branch_and_notebook(book, page, width):
    links = loaded(book.pages[page, width]).dom["links"]
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


@pytest.mark.parametrize("width", WIDTHS)
def test_search_finds_a_term_with_one_search_box(book, width):
    result = loaded(book.search[width]).probe
    assert result["links"], f"searching {SEARCH_TERM!r} found nothing: {result['summary']}"
    pages = [link.removeprefix(book.base_url) for link in result["links"]]
    assert any(page.startswith(SEARCH_HIT) for page in pages), (
        f"searching {SEARCH_TERM!r} did not find {SEARCH_HIT}; it found {pages}"
    )
    errors = javascript_errors(book.search[width])
    assert not errors, "JavaScript errors on the search page:\n" + "\n".join(errors)
    assert result["boxes"] == 1, (
        f"the search page at {width} px shows {result['boxes']} search boxes; a reader needs one"
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_static_sliders_move_and_are_legible(book, width):
    if SLIDER_PAGE not in PAGES:
        pytest.skip(f"{SLIDER_PAGE} (the |w|^k slider) is not in _toc.yml yet")
    assert loaded(book.pages[SLIDER_PAGE, width]).sliders, (
        f"{SLIDER_PAGE} has no div.bptt-static-slider"
    )
    for (page, at), visit_ in book.pages.items():
        if at != width:
            continue
        for number, slider in enumerate(visit_.sliders, start=1):
            where = f"{page} at {width} px, slider {number}"
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
            assert slider["label"], f"{where}: the range input has no label naming the parameter"
            assert slider["image_width"] >= 0.85 * min(slider["column_width"], 500), (
                f"{where}: the figure is {slider['image_width']} px wide in a "
                f"{slider['column_width']} px column (too small to read)"
            )
            assert slider["input_height"] >= 30 and slider["input_width"] >= 120, (
                f"{where}: the range input is {slider['input_width']} x "
                f"{slider['input_height']} px, too small for a finger"
            )


@pytest.mark.parametrize(("page", "width"), VISITS, ids=VISIT_IDS)
def test_nothing_is_wider_than_its_box(book, page, width):
    """Equations, code, outputs and tables fit their column, or scroll inside their own box."""
    visit_ = loaded(book.pages[page, width])
    layout = visit_.layout
    assert not layout["pageWider"], (
        f"{where(visit_)}: the page is {layout['pageWidth']} px wide, wider than the window"
    )
    assert not layout["overflowing"], (
        f"{where(visit_)}: elements wider than their box that do not scroll:\n"
        + "\n".join(layout["overflowing"])
    )


@pytest.mark.parametrize(("page", "width"), VISITS, ids=VISIT_IDS)
def test_menu_and_contents_buttons_open(book, page, width):
    visit_ = loaded(book.pages[page, width])
    assert "menu button" in visit_.menus, f"{where(visit_)}: no visible menu button"
    broken = {name: state for name, state in visit_.menus.items() if state != "opens"}
    assert not broken, f"{where(visit_)}: clicking them changed nothing: {broken}"


@pytest.mark.parametrize(("page", "width"), VISITS, ids=VISIT_IDS)
def test_markdown_tables_are_rendered(book, page, width):
    visit_ = loaded(book.pages[page, width])
    tables = visit_.layout["markdownTables"]
    assert not tables, (
        f"{where(visit_)}: Markdown tables printed as text instead of a <table>:\n"
        + "\n".join(tables)
    )


@pytest.mark.parametrize(("page", "width"), VISITS, ids=VISIT_IDS)
def test_images_have_alt_text(book, page, width):
    """Every image says what it shows. A figure's alt text and caption live in its cell's
    metadata (bptt.plots.figure_metadata; `tools/nbtool.py figure` writes them); without one,
    Sphinx writes the file path, which this test refuses."""
    visit_ = loaded(book.pages[page, width])
    bad = visit_.layout["badAlt"]
    assert not bad, (
        f"{where(visit_)}: {len(bad)} image(s) without an alt text saying what they show "
        f"(fix: python tools/nbtool.py figure {page}.ipynb CELL --alt '...' --caption '...'):\n"
        + "\n".join(bad)
    )


def test_screenshots_are_saved_for_review(book):
    for page in screenshot_pages():
        for width in WIDTHS:
            path = screenshot_path(page, width)
            assert path.exists(), f"no screenshot of {page} at {path.relative_to(ROOT)}"
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"


# The instrument itself: `visit` must see what a broken page does, and nothing on a clean one.


def course_slider(frames_differ: bool) -> str:
    """A three-frame slider of bptt.widgets; with frames_differ=False every frame is the first."""
    import re

    from bptt import widgets

    def draw(ax, value):
        ax.plot([0, 1], [0, value])
        ax.set_ylim(-1, 3)

    html = widgets.static_slider(
        draw, [0.0, 1.0, 2.0], default=0.0, label="w", name="probe", figsize=(3.0, 2.0), dpi=40,
        alt="a line whose slope is w",
    ).html
    if not frames_differ:
        first = re.search(r'frames\[0\] = "([^"]*)"', html).group(1)
        html = re.sub(r'(frames\[\d+\] = )"[^"]*"', lambda m: f'{m.group(1)}"{first}"', html)
    return html


# A theme-like menu button and the dialog it should open; `opens` decides whether it does.
def menu(opens: bool) -> str:
    action = "document.getElementById('pst-primary-sidebar-modal').showModal()" if opens else ""
    return (
        f'<button class="primary-toggle" onclick="{action}">menu</button>'
        '<dialog id="pst-primary-sidebar-modal"><p>chapters</p></dialog>'
    )


@pytest.fixture(scope="module")
def probe_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("probe-site")
    (site / "clean.html").write_text(
        "<!doctype html><title>clean</title><article class='bd-article' style='width:360px'>"
        f"{menu(True)}<p>| not | a table |</p>{course_slider(True)}"
        "<div style='overflow-x:auto'><pre style='width:900px'>a long line that scrolls</pre></div>"
        "</article>"
    )
    (site / "broken.html").write_text(
        "<!doctype html><title>broken</title><article class='bd-article' style='width:360px'>"
        "<script>console.error('logged on purpose')</script>"
        "<script src='https://cdn.example.org/lib.js'></script>"
        f"{menu(False)}"
        "<img src='missing.png'>"
        "<img src='_images/figure.png' alt='_images/figure.png'>"
        "<p>| a | b |\n|---|---|\n| 1 | 2 |</p>"
        "<div class='wide-equation' style='width:900px'>an equation cut off at the edge</div>"
        f"{course_slider(False)}"
        "<script>throw new Error('thrown on purpose')</script>"
        "</article>"
    )
    return site


def test_visit_finds_nothing_wrong_with_a_clean_page(browser, probe_site, tmp_path):
    for width in WIDTHS:
        with serve_directory(probe_site) as base_url:
            clean = loaded(
                visit(browser, base_url, "clean.html", width=width, failure_screenshots=tmp_path)
            )
        assert clean.findings() == [], clean.findings()
        assert clean.screenshot is None and not list(tmp_path.iterdir())
        assert clean.menus == {"menu button": "opens"}
        (slider,) = clean.sliders
        assert slider["frames"] == 3 and slider["value_after_key"] == "1", slider
        assert slider["moved"]["src"] != slider["first"]["src"] == slider["back"]["src"], slider
        assert slider["label"] == "w" and slider["input_height"] >= 30, slider


def test_visit_reports_what_a_broken_page_does(browser, probe_site, tmp_path):
    with serve_directory(probe_site) as base_url:
        broken = loaded(
            visit(browser, base_url, "broken.html", width=PHONE, failure_screenshots=tmp_path)
        )
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
    layout = broken.layout
    assert any("wide-equation" in item for item in layout["overflowing"]), layout
    assert len(layout["markdownTables"]) == 1, layout
    assert len(layout["badAlt"]) == 2, layout  # no alt at all, and a file path as alt
    assert broken.menus["menu button"].startswith("does not open"), broken.menus
    (slider,) = broken.sliders
    assert slider["moved"]["src"] == slider["first"]["src"], (
        "a frozen slider must be reported as frozen"
    )
    findings = broken.findings()
    for expected in ("JavaScript error", "request to another host", "wider than its box",
                     "unrendered Markdown table", "image without a real alt text",
                     "menu button does not open"):
        assert any(f.startswith(expected) for f in findings), (expected, findings)
    assert broken.screenshot == tmp_path / f"broken@{PHONE}.png"
    assert broken.screenshot.read_bytes()[:4] == b"\x89PNG"
