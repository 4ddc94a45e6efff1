"""Drive Debian's Chromium over the built book: serve it locally, open a page, record what happened.

The browser test (tests/test_browser.py) states what the book must look like; this module only
knows how to look. `visit` opens one page in a fresh browser context (so every page is seen as
a first-time reader sees it), blocks every request that leaves the local server, and returns a
`PageVisit` with the console errors, the blocked requests, the state of the math, the images,
the links, the kernel-free sliders, what overflows its box, unrendered Markdown tables, images
without a real alt text and whether the menu and contents buttons open anything, at the
viewport width it is given (a phone is 390 px, a laptop 1280 px). A page with findings is
saved as a full-page screenshot when `visit` is given a folder for them.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INSTALL_HINT = "install Debian's Chromium to run it: sudo apt-get install chromium"

# Flags that keep a headless Chromium quiet and offline: no sandbox (containers, root), no GPU,
# no background traffic of its own (updates, sync, QUIC probes). Playwright gives every launch a
# fresh temporary profile, removed when the browser closes.
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# The only CDN files a page of the book may ask for. Requests for them are blocked like any
# other, and the console error a blocked load causes is expected, for these files only:
# require.js and the ipywidgets HTML manager (myst-nb adds both to pages that store widget
# state; live widgets need a kernel anyway), and the Font Awesome 4 stylesheet that matplotlib's
# `to_jshtml` links for its button icons (the animation itself is inline and works without it).
WIDGET_CDN_URLS = (
    "https://cdnjs.cloudflare.com/ajax/libs/require.js/",
    "https://cdn.jsdelivr.net/npm/@jupyter-widgets/html-manager@",
    "https://maxcdn.bootstrapcdn.com/font-awesome/",
)

VIEWPORT = {"width": 1280, "height": 900}
PHONE, LAPTOP = 390, 1280
HEIGHTS = {PHONE: 844, LAPTOP: 900}
TIMEOUT_MS = 30_000
CLICK_TIMEOUT_MS = 5_000
# A failing page's screenshot: the whole page, down to this many CSS pixels (long chapters
# would take seconds each, and the top of a page usually shows what is wrong).
FAILURE_SHOT_MAX_HEIGHT = 6_000


def chromium_executable() -> str | None:
    """The Chromium binary to drive: `chromium` on PATH, else Debian's path, else None."""
    found = shutil.which("chromium")
    if found:
        return found
    debian = Path("/usr/bin/chromium")
    return str(debian) if debian.exists() else None


def is_widget_cdn(url: str) -> bool:
    return url.startswith(WIDGET_CDN_URLS)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """Serve `directory` on 127.0.0.1 (free port, own thread); yield its base URL, ending in /."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass
class PageVisit:
    """What one page did in the browser."""

    url: str
    problem: str | None = None  # the page could not be loaded or inspected at all
    console_errors: list[str] = field(default_factory=list)  # not counting expected CDN blocks
    page_errors: list[str] = field(default_factory=list)  # uncaught JavaScript exceptions
    external_requests: list[str] = field(default_factory=list)  # blocked, in request order
    failed_local: list[str] = field(default_factory=list)  # local requests that failed or 4xx/5xx
    mathjax_script_status: int | None = None  # HTTP status of the local mathjax/tex-chtml.js
    dom: dict[str, Any] = field(default_factory=dict)  # see _INSPECT_JS
    sliders: list[dict[str, Any]] = field(default_factory=list)  # see _probe_slider
    layout: dict[str, Any] = field(default_factory=dict)  # see _LAYOUT_JS
    menus: dict[str, str] = field(default_factory=dict)  # button -> "opens" or what went wrong
    width: int = VIEWPORT["width"]
    screenshot: Path | None = None  # where the page was saved because it had findings
    probe: Any = None  # whatever the caller's probe returned

    def findings(self) -> list[str]:
        """Everything a reader would notice, one line each (empty for a good page)."""
        found = [f"could not be opened: {self.problem}"] if self.problem else []
        found += [f"JavaScript error: {e}" for e in self.page_errors + self.console_errors]
        found += [f"request to another host: {u}" for u in self.external_requests
                  if not is_widget_cdn(u)]
        found += [f"failed to load: {f}" for f in self.failed_local]
        layout = self.layout
        if layout.get("pageWider"):
            found.append(f"the page is {layout['pageWidth']} px wide in a {self.width} px window")
        found += [f"wider than its box and not scrollable: {o}" for o in layout.get("overflowing", [])]
        found += [f"unrendered Markdown table: {t}" for t in layout.get("markdownTables", [])]
        found += [f"image without a real alt text: {i}" for i in layout.get("badAlt", [])]
        found += [f"{button} {state}" for button, state in self.menus.items() if state != "opens"]
        return found


# Runs after the load event: waits for MathJax's first typeset (bounded), decodes every image,
# then reports the math, the images (`output`: inside a notebook cell's output) and the links.
_INSPECT_JS = """async (timeoutMs) => {
  const mj = window.MathJax;
  let typesetDone = null;
  if (mj && mj.startup && mj.startup.promise) {
    const timer = new Promise(resolve => setTimeout(() => resolve(false), timeoutMs));
    typesetDone = await Promise.race([mj.startup.promise.then(() => true), timer]);
  }
  const images = Array.from(document.images);
  await Promise.all(images.map(img => img.decode().catch(() => null)));
  const math = Array.from(document.querySelectorAll('span.math, div.math'));
  return {
    mathjaxVersion: (mj && mj.version) || null,
    typesetDone: typesetDone,
    math: math.length,
    mathTypeset: math.filter(el => el.querySelector('mjx-container')).length,
    mathErrors: document.querySelectorAll('mjx-merror').length,
    images: images.map(img => ({
      src: img.getAttribute('src') || '',
      loaded: img.complete && img.naturalWidth > 0,
      output: Boolean(img.closest('.cell_output')),
    })),
    links: Array.from(document.querySelectorAll('a[href]'), a => a.href),
  };
}"""

# What a reader sees wrongly laid out in the article: elements sticking out of it that no scroll
# container holds (reported outermost first, at most 12), a page wider than the window, Markdown
# tables printed as text ("| a | b |" lines in a paragraph), images whose alt text is missing, a
# file name or a path (Sphinx's default is the image's URI).
_LAYOUT_JS = """() => {
  const article = document.querySelector('.bd-article') || document.querySelector('.bd-content') || document.body;
  const box = article.getBoundingClientRect();
  const clips = el => ['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(el).overflowX);
  const held = el => {
    for (let p = el.parentElement; p && p !== article; p = p.parentElement) if (clips(p)) return true;
    return false;
  };
  const describe = el => {
    const r = el.getBoundingClientRect();
    const cls = (el.className && el.className.baseVal === undefined) ? '.' + String(el.className).trim().split(/\\s+/).slice(0, 2).join('.') : '';
    const text = (el.textContent || '').trim().replace(/\\s+/g, ' ').slice(0, 50);
    return `<${el.tagName.toLowerCase()}${cls === '.' ? '' : cls}> ${Math.round(r.width)} px wide, ` +
           `${Math.round(Math.max(r.right - box.right, box.left - r.left))} px outside ("${text}")`;
  };
  const out = [];
  for (const el of article.querySelectorAll('*')) {
    if (out.length >= 12) break;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    if (r.right <= box.right + 1 && r.left >= box.left - 1) continue;
    if (out.some(o => o.contains(el)) || held(el)) continue;
    out.push(el);
  }
  const tables = Array.from(article.querySelectorAll('p, li')).filter(el =>
    el.textContent.split('\\n').filter(line => /^\\s*\\|.*\\|.*\\|\\s*$/.test(line)).length >= 2
  ).map(el => el.textContent.trim().slice(0, 60));
  const badAlt = Array.from(article.querySelectorAll('img')).filter(img => {
    const alt = (img.getAttribute('alt') || '').trim();
    const src = img.getAttribute('src') || '';
    return alt.length < 5 || alt === src || /\\.(png|svg|jpe?g|gif|webp)$/i.test(alt) || alt.includes('_images/');
  }).map(img => `${(img.getAttribute('src') || '').slice(0, 70)} (alt: ${JSON.stringify(img.getAttribute('alt'))})`);
  const root = document.documentElement;
  return {
    overflowing: out.map(describe),
    pageWidth: root.scrollWidth,
    pageWider: root.scrollWidth > window.innerWidth + 1,
    markdownTables: tables,
    badAlt: badAlt,
  };
}"""

# The state a sidebar button changes: which dialogs are open, the sidebars' classes and widths.
_MENU_STATE_JS = """() => JSON.stringify([
  Array.from(document.querySelectorAll('dialog'), d => d.open),
  ['#pst-primary-sidebar', '#pst-secondary-sidebar', '.bd-sidebar-primary', '.bd-sidebar-secondary']
    .map(sel => document.querySelector(sel))
    .map(el => el ? [el.className, Math.round(el.getBoundingClientRect().width)] : null),
])"""

MENU_BUTTONS = {"menu button": ".primary-toggle", "contents button": ".secondary-toggle"}


def _probe_menus(page) -> dict[str, str]:
    """Click each visible menu/contents button like a reader; did it open (or fold) anything?

    Only buttons a reader can see are clicked (the theme also renders hidden copies). After a
    click that opened a dialog, Escape closes it; a click that folded a sidebar is undone.
    """
    results = {}
    for name, selector in MENU_BUTTONS.items():
        button = page.locator(f"{selector} >> visible=true")
        if button.count() == 0:
            continue
        before = page.evaluate(_MENU_STATE_JS)
        try:
            button.first.click(timeout=CLICK_TIMEOUT_MS)
            page.wait_for_function(f"() => ({_MENU_STATE_JS})() !== {before!r}", timeout=5_000)
        except Exception as error:  # noqa: BLE001 - a timeout or an unclickable button: the finding
            results[name] = f"does not open ({type(error).__name__}: {str(error).splitlines()[0][:120]})"
            continue
        results[name] = "opens"
        if page.evaluate("() => Array.from(document.querySelectorAll('dialog')).some(d => d.open)"):
            page.keyboard.press("Escape")
        else:
            button.first.click(timeout=CLICK_TIMEOUT_MS)
        page.wait_for_timeout(100)
    return results


# A slider's image: its src as length and FNV-1a hash (to_jshtml frames are long data: URIs).
_FRAME_JS = """img => {
  let hash = 2166136261;
  for (let i = 0; i < img.src.length; i++) hash = Math.imul(hash ^ img.src.charCodeAt(i), 16777619);
  return {src: img.src.length + ':' + (hash >>> 0).toString(16), loaded: img.naturalWidth > 0};
}"""


def _probe_slider(slider) -> dict[str, Any]:
    """Move one `div.bptt-static-slider` like a reader does and report whether its figure changed.

    Presses the right arrow key on the range input (the browser fires `input`), then clicks the
    animation's "Previous frame" button, which must bring back the first figure. A slider that
    starts on its last frame is moved left and back with "Next frame" instead.
    """
    range_input = slider.locator("input[type=range]")
    image = slider.locator("img")
    if range_input.count() != 1 or image.count() != 1:
        return {
            "problem": f"expected one range input and one img, found "
            f"{range_input.count()} and {image.count()}"
        }
    frames = int(range_input.evaluate("el => Number(el.max) - Number(el.min) + 1"))
    looks = slider.evaluate("""root => {
      const input = root.querySelector('input[type=range]');
      const label = input.id ? root.querySelector(`label[for="${input.id}"]`) : null;
      const img = root.querySelector('img').getBoundingClientRect();
      const column = (root.closest('.bd-article') || document.body).getBoundingClientRect();
      const knob = input.getBoundingClientRect();
      return {label: label ? label.textContent.trim() : (input.getAttribute('aria-label') || ''),
              image_width: Math.round(img.width), column_width: Math.round(column.width),
              input_height: Math.round(knob.height), input_width: Math.round(knob.width)};
    }""")
    first = image.evaluate(_FRAME_JS)
    start = range_input.input_value()
    at_end = start == range_input.evaluate("el => el.max")
    range_input.press("ArrowLeft" if at_end else "ArrowRight")
    moved = image.evaluate(_FRAME_JS)
    value = range_input.input_value()
    back_button = slider.locator(f"button[title='{'Next' if at_end else 'Previous'} frame']")
    if back_button.count():
        back_button.first.click()
    back = image.evaluate(_FRAME_JS)
    return {
        "frames": frames,
        "first": first,
        "moved": moved,
        "value_before_key": start,
        "value_after_key": value,
        "expected_after_key": str(int(start) + (-1 if at_end else 1)) if start else None,
        "back": back,
        "has_back_button": bool(back_button.count()),
        **looks,
    }


def visit(
    browser,
    base_url: str,
    path: str,
    *,
    probe: Callable | None = None,
    screenshot: Path | None = None,
    width: int = VIEWPORT["width"],
    failure_screenshots: Path | None = None,
    menus: bool = True,
) -> PageVisit:
    """Open base_url + path in a fresh context of `browser` and record what the page did.

    Every request that does not go to base_url is aborted and recorded. `probe(page)` runs
    while the page is open; its result lands in `PageVisit.probe`. With `screenshot`, the whole
    page is saved there as PNG. The window is `width` CSS pixels wide. With
    `failure_screenshots`, a page with findings is saved into that folder as
    ``<path>@<width>.png`` (and `PageVisit.screenshot` says where).
    """
    from playwright.sync_api import Error as PlaywrightError

    report = PageVisit(url=base_url + path, width=width)
    blocked: list[str] = []

    def on_route(route) -> None:
        url = route.request.url
        if url.startswith(base_url):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    def on_console(message) -> None:
        if message.type != "error":
            return
        source = message.location.get("url", "")
        if source in blocked and is_widget_cdn(source):
            return  # the expected "Failed to load resource" of a blocked widget CDN file
        report.console_errors.append(f"{message.text} (at {source or 'inline'})")

    def on_response(response) -> None:
        if not response.url.startswith(base_url):
            return
        if response.status >= 400:
            report.failed_local.append(f"{response.url}: HTTP {response.status}")
        if response.url.split("?")[0].endswith("/mathjax/tex-chtml.js"):
            report.mathjax_script_status = response.status

    def on_request_failed(request) -> None:
        if request.url.startswith(base_url):
            report.failed_local.append(f"{request.url}: {request.failure}")

    viewport = {"width": width, "height": HEIGHTS.get(width, VIEWPORT["height"])}
    context = browser.new_context(viewport=viewport, service_workers="block")
    try:
        context.route("**/*", on_route)
        page = context.new_page()
        page.on("console", on_console)
        page.on("pageerror", lambda error: report.page_errors.append(str(error)))
        page.on("response", on_response)
        page.on("requestfailed", on_request_failed)
        page.goto(report.url, wait_until="load", timeout=TIMEOUT_MS)
        report.dom = page.evaluate(_INSPECT_JS, TIMEOUT_MS // 2)
        report.layout = page.evaluate(_LAYOUT_JS)
        report.sliders = [_probe_slider(s) for s in page.locator("div.bptt-static-slider").all()]
        if screenshot is not None:
            page.evaluate("() => window.scrollTo(0, 0)")
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
        if menus:
            report.menus = _probe_menus(page)
        if probe is not None:
            report.probe = probe(page)
        report.external_requests = list(blocked)
        if failure_screenshots is not None and report.findings():
            failure_screenshots.mkdir(parents=True, exist_ok=True)
            stem = path.split("?")[0].removesuffix(".html").replace("/", "_")
            shot = failure_screenshots / f"{stem}@{width}.png"
            height = page.evaluate("() => document.documentElement.scrollHeight")
            clip = {"x": 0, "y": 0, "width": width, "height": min(height, FAILURE_SHOT_MAX_HEIGHT)}
            try:
                page.screenshot(path=str(shot), full_page=True, clip=clip)
                report.screenshot = shot
            except PlaywrightError:  # the findings stand without their picture
                pass
    except PlaywrightError as error:  # a page that fails to load or inspect is that page's finding
        report.problem = f"{type(error).__name__}: {error}"
    finally:
        context.close()
    report.external_requests = blocked
    return report
