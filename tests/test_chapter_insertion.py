"""Inserting a chapter touches only _toc.yml and the new file: every reference stays right.

The course refers to chapters by label, {doc} link or title, never by number, so a chapter put
in the middle of the book renumbers the ones after it and nothing else needs an edit. This test
does it: it copies the book's sources, inserts a chapter after the first one, builds the copy
the way `make book` does (warnings are errors, so a dangling reference fails the build), and
checks that the chapters after the insertion were renumbered and every internal link resolves.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from bs4 import BeautifulSoup
from course import ROOT, build_book

pytestmark = pytest.mark.slow

NOT_THE_BOOK = (".git", ".venv", "_build", "test-artifacts", "__pycache__", ".hypothesis",
                "tests", "tools", "binder", ".github", ".pytest_cache")
INSERTED = "chapters/01a_inserted_chapter"


def section_number(html: str) -> str:
    match = re.search(r'<h1>\s*<span class="section-number">([\d.]+)\s*</span>', html)
    assert match, "the page has no numbered title"
    return match.group(1).rstrip(".")


def insert_after_first_chapter(toc: dict) -> str:
    """Put INSERTED after the first numbered chapter; return the file that followed it."""
    for part in toc["parts"]:
        if part.get("numbered"):
            following = part["chapters"][1]["file"]
            part["chapters"].insert(1, {"file": INSERTED})
            return following
    raise AssertionError("no numbered part in _toc.yml")


def test_inserting_a_chapter_renumbers_the_rest_and_breaks_no_reference(tmp_path):
    book = tmp_path / "book"
    shutil.copytree(ROOT, book, ignore=shutil.ignore_patterns(*NOT_THE_BOOK), symlinks=True)
    toc = yaml.safe_load((book / "_toc.yml").read_text())
    following = insert_after_first_chapter(toc)
    (book / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    (book / f"{INSERTED}.md").write_text(
        "# An inserted chapter\n\n(inserted-chapter-section)=\n## A section\n\n"
        "It links back to {doc}`01_unrolled_graph` and forward to {doc}`"
        f"{Path(following).name}`.\n"
    )

    result = build_book(tmp_path / "out", source=book)
    assert result.returncode == 0, "the book with an inserted chapter did not build:\n" + (
        result.stdout[-3000:] + result.stderr[-3000:])
    html_dir = tmp_path / "out" / "_build" / "html"

    assert section_number((html_dir / f"{INSERTED}.html").read_text()) == "2"
    assert section_number((html_dir / f"{following}.html").read_text()) == "3"

    broken = []
    for page in html_dir.rglob("*.html"):
        if "_static" in page.parts or "mathjax" in page.parts:
            continue
        for link in BeautifulSoup(page.read_text(), "html.parser").find_all("a", href=True):
            parts = urlsplit(link["href"])
            if parts.scheme or link["href"].startswith(("//", "mailto:", "#")) or not parts.path:
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            if not (target / "index.html" if target.is_dir() else target).exists():
                broken.append(f"{page.relative_to(html_dir)} -> {link['href']}")
    assert not broken, "broken links after the insertion:\n" + "\n".join(broken[:30])
