"""Facts about the course repository that several test modules share."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIRS = ("chapters", "exercises", "solutions")


def config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def repository() -> tuple[str, str]:
    """(url, branch) of the repository, as _config.yml states them."""
    repo = config()["repository"]
    return repo["url"].rstrip("/"), repo["branch"]


def toc_files() -> list[str]:
    """Every file named in _toc.yml (without suffix), in order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(toc.get("parts", toc.get("chapters", [])))
    return files


def notebooks() -> list[Path]:
    return sorted(p for d in NOTEBOOK_DIRS for p in (ROOT / d).glob("*.ipynb"))


def read_notebook(path: Path) -> dict:
    return json.loads(path.read_text())


def build_book(out_dir: Path, source: Path = ROOT) -> subprocess.CompletedProcess:
    """Build the HTML book of ``source`` (the repository) into out_dir/_build/html the way
    `make book` does (warnings are errors)."""
    subprocess.run([sys.executable, str(ROOT / "tools" / "fetch_mathjax.py")], check=True)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    return subprocess.run(
        [str(jupyter_book), "build", str(source), "--path-output", str(out_dir),
         "--warningiserror", "--nitpick", "--keep-going"],
        capture_output=True, text=True, check=False,
        env={**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"},
    )
