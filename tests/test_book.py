"""The HTML book: builds with zero warnings, every page is there, links and launch buttons work."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from bs4 import BeautifulSoup
from course import ROOT, repository, toc_files


def html_pages(html_dir: Path) -> list[Path]:
    return sorted(
        p for p in html_dir.rglob("*.html") if "_static" not in p.parts and "mathjax" not in p.parts
    )


def test_every_toc_entry_has_a_page(built_book):
    missing = [f for f in toc_files() if not (built_book / f"{f}.html").exists()]
    assert not missing, f"pages missing from the build: {missing}"


def test_every_chapter_is_in_the_toc():
    listed = set(toc_files())
    for folder in ("chapters", "exercises", "solutions"):
        for path in sorted((ROOT / folder).glob("*.ipynb")):
            stem = path.relative_to(ROOT).with_suffix("").as_posix()
            assert stem in listed, f"{stem} is not listed in _toc.yml"


def test_launch_buttons_point_at_main_and_the_right_notebook(built_book):
    url, branch = repository()
    org_repo = urlsplit(url).path.strip("/")
    pages = [f for f in toc_files() if (ROOT / f"{f}.ipynb").exists()]
    if not pages:
        pytest.skip("no notebook pages in the book yet")
    for page in pages:
        html = (built_book / f"{page}.html").read_text()
        binder = f"https://mybinder.org/v2/gh/{org_repo}/{branch}?urlpath=tree/{page}.ipynb"
        colab = f"https://colab.research.google.com/github/{org_repo}/blob/{branch}/{page}.ipynb"
        assert binder in html, f"{page}: no Binder link {binder}"
        assert colab in html, f"{page}: no Colab link {colab}"


def test_internal_links_resolve(built_book):
    broken = []
    anchors_cache: dict[Path, set[str]] = {}

    def anchors(path: Path) -> set[str]:
        if path not in anchors_cache:
            soup = BeautifulSoup(path.read_text(), "html.parser")
            anchors_cache[path] = {t["id"] for t in soup.find_all(id=True)} | {
                t["name"] for t in soup.find_all("a", attrs={"name": True})
            }
        return anchors_cache[path]

    for page in html_pages(built_book):
        soup = BeautifulSoup(page.read_text(), "html.parser")
        for tag, attr in (("a", "href"), ("img", "src"), ("script", "src"), ("link", "href")):
            for element in soup.find_all(tag, attrs={attr: True}):
                target = element[attr]
                parts = urlsplit(target)
                if parts.scheme or target.startswith(("//", "mailto:", "javascript:")):
                    continue
                path = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
                if path.is_dir():
                    path = path / "index.html"
                if not path.exists():
                    broken.append(f"{page.relative_to(built_book)}: {target}")
                elif (
                    parts.fragment
                    and path.suffix == ".html"
                    and unquote(parts.fragment) not in anchors(path)
                ):
                    broken.append(f"{page.relative_to(built_book)}: {target} (no such anchor)")
    assert not broken, "broken internal links:\n" + "\n".join(broken[:50])


def test_mathjax_is_served_locally(built_book):
    """Math must typeset offline: MathJax comes from the vendored copy, never from a CDN."""
    assert (built_book / "mathjax" / "tex-chtml.js").exists()
    for page in html_pages(built_book):
        html = page.read_text()
        assert not re.search(r"https?://[^\"']*mathjax", html, re.IGNORECASE), (
            f"{page.name} loads MathJax from a CDN"
        )


def _folded_cells(notebook: Path) -> int:
    cells = json.loads(notebook.read_text())["cells"]
    return sum("hide-input" in c.get("metadata", {}).get("tags", []) for c in cells)


@pytest.mark.parametrize("folder", ["solutions", "exercises"])
def test_solutions_are_folded_and_exercises_are_not(built_book, folder):
    """A solution page shows its code and prose behind toggles; an exercise page hides no stub.

    (The bootstrap cell is removed from every page: it only matters on Colab.)"""
    notebooks = sorted((ROOT / folder).glob("ex[0-9][0-9]_*.ipynb"))
    assert notebooks
    for notebook in notebooks:
        soup = BeautifulSoup(
            (built_book / folder / f"{notebook.stem}.html").read_text(), "html.parser"
        )
        toggles = soup.select("details.hide.above-input")
        dropdowns = soup.select("details.sd-dropdown")
        assert len(toggles) == _folded_cells(notebook), f"{folder}/{notebook.stem}"
        if folder == "solutions":
            assert toggles or dropdowns, f"{notebook.stem}: no solution is folded"
            assert all(not d.has_attr("open") for d in dropdowns), (
                f"{notebook.stem}: a dropdown is open"
            )
        else:
            assert not dropdowns, f"{notebook.stem}: the exercise shows a solution dropdown"


def test_appendix_tables_render_as_tables(built_book):
    """The benchmark tables are Markdown outputs; the book must render them as <table>s."""
    soup = BeautifulSoup(
        (built_book / "chapters" / "A1_performance.html").read_text(), "html.parser"
    )
    results = sorted((ROOT / "benchmarks" / "results").glob("*.md"))
    assert len(soup.select("div.cell_output table")) >= len(results) - 1
    assert not [p for p in soup.select("div.cell_output p") if p.get_text().count("|") >= 4]


def test_citations_and_bibliography_share_one_author_year_style(built_book):
    soup = BeautifulSoup((built_book / "references.html").read_text(), "html.parser")
    labels = [label.get_text().strip("[]") for label in soup.select("div.citation span.label")]
    assert labels, "the bibliography is empty"
    author_year = re.compile(r"^.+, (\d{4}[a-z]?|n\.d\.)$")
    assert all(author_year.match(label) for label in labels), labels
    cited = set()
    for page in html_pages(built_book):
        for link in BeautifulSoup(page.read_text(), "html.parser").select(
            'a[href*="references.html#"]'
        ):
            cited.add(link.get_text())
    # a textual citation ({cite:t}) writes the authors as text and links only the year
    years = {author_year.match(label).group(1) for label in labels}
    assert cited <= set(labels) | years | {c for c in cited if not re.search(r"\d{4}", c)}, (
        f"in-text citations that are no bibliography label: {sorted(cited - set(labels))[:5]}"
    )


def test_api_reference_documents_the_package(built_book):
    soup = BeautifulSoup((built_book / "api.html").read_text(), "html.parser")
    ids = {dt["id"] for dt in soup.select("dt.sig[id]")}
    for name in ("bptt.rnn.forward", "bptt.widgets.static_slider", "bptt.plots.use_course_style"):
        assert name in ids, f"the API reference does not document {name}"


def test_all_notebooks_download_as_one_zip(built_book):
    import zipfile

    with zipfile.ZipFile(built_book / "bptt-notebooks.zip") as archive:
        names = set(archive.namelist())
    for folder in ("chapters", "exercises"):
        for notebook in (ROOT / folder).glob("*.ipynb"):
            assert f"bptt-notebooks/{folder}/{notebook.name}" in names


def test_notebook_pages_state_their_run_time_and_hide_test_plumbing(built_book):
    timings = json.loads((ROOT / "benchmarks" / "results" / "notebooks.json").read_text())
    timed = {row[0].removesuffix(".ipynb") for row in timings["rows"] if row[0].endswith(".ipynb")}
    for page in toc_files():
        if not (ROOT / f"{page}.ipynb").exists():
            continue
        soup = BeautifulSoup((built_book / f"{page}.html").read_text(), "html.parser")
        facts = soup.select_one("p.bptt-chapter-facts")
        assert facts is not None, f"{page}: no run time / download line under the title"
        if page in timed:
            assert "Time to run this notebook" in facts.get_text(), page
        code = "\n".join(block.get_text() for block in soup.select("div.cell_input pre"))
        assert "nbval-ignore-output" not in code, f"{page} shows nbval comments to readers"


def test_every_page_has_the_favicon_and_logo(built_book):
    for page in (built_book / "intro.html", built_book / "chapters" / "A1_performance.html"):
        soup = BeautifulSoup(page.read_text(), "html.parser")
        icon = soup.select_one('link[rel="icon"]')
        assert icon is not None and icon["href"].endswith("favicon.svg"), page.name
        assert soup.select_one("img.logo__image"), f"{page.name}: no logo"


def test_chapters_link_package_functions_to_the_api_reference(built_book):
    """Code cells link every package name they use (sphinx-codeautolink) and prose links the
    first mention of a function on each page (_ext/api_links.py), so a reader reaches the
    reference entry where a function is first used."""
    api = BeautifulSoup((built_book / "api.html").read_text(), "html.parser")
    documented = {dt["id"] for dt in api.select("dt.sig[id]")}
    chapters = sorted((built_book / "chapters").glob("[0-9]*.html"))
    assert chapters
    for page in chapters:
        soup = BeautifulSoup(page.read_text(), "html.parser")
        code_links = soup.select("a.sphinx-codeautolink-a[href*='api.html#']")
        assert code_links, f"{page.name}: no code cell links a package function to the API page"
        prose_links = soup.select("a.bptt-api-link")
        targets = [unquote(urlsplit(a["href"]).fragment) for a in prose_links]
        assert len(targets) == len(set(targets)), (
            f"{page.name}: a function is linked twice in prose"
        )
        for target in targets + [unquote(urlsplit(a["href"]).fragment) for a in code_links]:
            assert target in documented or target.startswith("module-"), (
                f"{page.name}: link to {target!r}, which the API page does not document"
            )
    numpy_bptt = BeautifulSoup(
        (built_book / "chapters" / "04_bptt_numpy.html").read_text(), "html.parser"
    )
    first = numpy_bptt.select_one("a.bptt-api-link[href$='#bptt.rnn.step_forward']")
    assert first is not None, (
        "the numpy BPTT chapter's first mention of rnn.step_forward is not linked"
    )
