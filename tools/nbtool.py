"""Maintainer tool for the course notebooks.

    python tools/nbtool.py bootstrap [NOTEBOOK ...]   rewrite the first (bootstrap) cell
    python tools/nbtool.py check [NOTEBOOK ...]       exit 1 if a bootstrap cell is stale
    python tools/nbtool.py execute NOTEBOOK ...       bootstrap, then execute in place
    python tools/nbtool.py nbval-reasons [NOTEBOOK ...]
                                move "# nbval-ignore-output: <reason>" first lines into the
                                cell's metadata (nbval.reason), out of the code readers see
    python tools/nbtool.py badge [NOTEBOOK ...]       add or refresh the "Open in Colab" badge
                                (a markdown cell after the bootstrap cell; the book hides it)
    python tools/nbtool.py tidy [NOTEBOOK ...]        bootstrap + nbval-reasons + badge
    python tools/nbtool.py figure NOTEBOOK CELL --alt TEXT [--caption TEXT] [--name LABEL]
                                give the figure of code cell CELL (index or cell id) its alt
                                text, caption and {numref} label (myst-nb cell metadata)

Without paths, `bootstrap`, `check`, `nbval-reasons`, `badge` and `tidy` visit every notebook in
chapters/, exercises/ and solutions/. None of them changes a code cell's outputs or execution
count, so a notebook they touch needs no re-execution. The repository URL comes from `repository.url` in _config.yml, the one place it
is written; the bootstrap cell is generated from it, so it is never edited by hand.

Notebooks are stored executed (nbval compares their outputs in `make test`): after editing a
notebook, run `execute` on it and commit the result.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIRS = ("chapters", "exercises", "solutions")
BOOTSTRAP_TAG = "bootstrap"
# The book leaves the cell out ("remove-cell"): it matters on Colab, not to a reader of the HTML.
BOOTSTRAP_TAGS = (BOOTSTRAP_TAG, "remove-cell")

BOOTSTRAP_TEMPLATE = '''\
# Course bootstrap: installs the `bptt` package when it is missing (on Colab, say).
# Anywhere `bptt` is already importable this cell does nothing. It installs only `bptt`,
# never torch or numpy, so the runtime's own builds stay in place.
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("bptt") is None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "{requirement}"],
        check=True,
    )'''


NBVAL_TAG = "nbval-ignore-output"
NBVAL_COMMENT = re.compile(r"^\s*#\s*nbval-ignore-output\s*:?\s*(?P<reason>.*?)\s*$")
BADGE_TAGS = ("colab-badge", "remove-cell")


def repository() -> tuple[str, str]:
    """Return (url, branch) from _config.yml."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = config["repository"]
    return repo["url"].rstrip("/"), repo.get("branch", "main")


def bootstrap_source() -> str:
    url, branch = repository()
    return BOOTSTRAP_TEMPLATE.format(requirement=f"bptt @ git+{url}@{branch}")


def bootstrap_cell() -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(bootstrap_source())
    cell.metadata["tags"] = list(BOOTSTRAP_TAGS)
    return cell


def all_notebooks() -> list[Path]:
    return sorted(p for d in NOTEBOOK_DIRS for p in (ROOT / d).glob("*.ipynb"))


def has_bootstrap(nb: nbformat.NotebookNode) -> bool:
    return bool(nb.cells) and BOOTSTRAP_TAG in nb.cells[0].metadata.get("tags", [])


def apply_bootstrap(nb: nbformat.NotebookNode) -> bool:
    """Insert or refresh the bootstrap cell; return True if the notebook changed."""
    source = bootstrap_source()
    if has_bootstrap(nb):
        first = nb.cells[0]
        if first.source == source and first.metadata.get("tags") == list(BOOTSTRAP_TAGS):
            return False
        first.source = source
        first.metadata["tags"] = list(BOOTSTRAP_TAGS)
        return True
    nb.cells.insert(0, bootstrap_cell())
    return True


def move_nbval_reasons(nb: nbformat.NotebookNode) -> bool:
    """Move leading "# nbval-ignore-output: reason" comment lines into metadata.nbval.reason.

    Returns True if the notebook changed. A comment line in a cell without the tag also gets
    the tag (the comment said what the cell needs). Outputs and counts are left as they are.
    """
    changed = False
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        lines = cell.source.split("\n")
        reasons, kept = [], []
        for line in lines:
            match = NBVAL_COMMENT.match(line)
            if match and not kept:  # only the cell's leading comment lines
                reasons.append(match.group("reason"))
            else:
                kept.append(line)
        if not reasons:
            continue
        while kept and not kept[0].strip():
            kept.pop(0)
        cell.source = "\n".join(kept)
        reason = " ".join(r for r in reasons if r).strip()
        if reason:
            cell.metadata.setdefault("nbval", {})["reason"] = reason
        tags = cell.metadata.setdefault("tags", [])
        if NBVAL_TAG not in tags:
            tags.append(NBVAL_TAG)
        changed = True
    return changed


def colab_url(path: Path) -> str:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    url, branch = repository()
    org_repo = url.split("github.com/", 1)[-1].strip("/")
    colab = config.get("launch_buttons", {}).get("colab_url", "https://colab.research.google.com")
    relative = path.resolve().relative_to(ROOT).as_posix()
    return f"{colab.rstrip('/')}/github/{org_repo}/blob/{branch}/{relative}"


def badge_source(path: Path) -> str:
    return (
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        f"({colab_url(path)})"
    )


def apply_badge(nb: nbformat.NotebookNode, path: Path) -> bool:
    """Insert or refresh the Colab badge cell right after the bootstrap cell."""
    source = badge_source(path)
    where = 1 if has_bootstrap(nb) else 0
    for cell in nb.cells:
        if cell.cell_type == "markdown" and BADGE_TAGS[0] in cell.metadata.get("tags", []):
            if cell.source == source and cell.metadata.get("tags") == list(BADGE_TAGS):
                return False
            cell.source = source
            cell.metadata["tags"] = list(BADGE_TAGS)
            return True
    cell = nbformat.v4.new_markdown_cell(source)
    cell.metadata["tags"] = list(BADGE_TAGS)
    nb.cells.insert(where, cell)
    return True


def set_figure(path: Path, cell_ref: str, alt: str, caption: str | None, name: str | None) -> None:
    """Write bptt.plots.figure_metadata(alt, caption, name) into one code cell's metadata."""
    sys.path.insert(0, str(ROOT))
    from bptt.plots import figure_metadata

    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if c.get("id") == cell_ref]
    if not cells and cell_ref.lstrip("-").isdigit():
        cells = [nb.cells[int(cell_ref)]]
    if not cells:
        raise SystemExit(f"{path}: no cell with index or id {cell_ref!r}")
    (cell,) = cells
    if cell.cell_type != "code":
        raise SystemExit(f"{path}: cell {cell_ref} is a {cell.cell_type} cell, not a code cell")
    mystnb = cell.metadata.setdefault("mystnb", {})
    for key, value in figure_metadata(alt, caption, name)["mystnb"].items():
        mystnb[key] = value
    nbformat.write(nb, path)


def execute(path: Path, timeout: int = 900) -> None:
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    apply_bootstrap(nb)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,  # per-cell timestamps would make every re-execution a diff
    )
    client.execute()
    nb.metadata.pop("widgets", None)  # widget state is session-specific and large
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nbformat.write(nb, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument(
        "command", choices=["bootstrap", "check", "execute", "nbval-reasons", "badge", "tidy", "figure"]
    )
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell (execute)")
    parser.add_argument("--alt", help="figure: what the figure shows, in a sentence")
    parser.add_argument("--caption", help="figure: the caption (MyST markdown)")
    parser.add_argument("--name", help="figure: the label {numref} cites")
    args = parser.parse_args(argv)
    if args.command == "figure":
        if len(args.notebooks) != 2 or not args.alt:
            parser.error("figure takes NOTEBOOK CELL --alt TEXT [--caption TEXT] [--name LABEL]")
        notebook, cell_ref = args.notebooks
        set_figure(notebook.resolve(), str(cell_ref), args.alt, args.caption, args.name)
        return 0
    if args.command in ("nbval-reasons", "badge", "tidy"):
        for path in [p.resolve() for p in args.notebooks] or all_notebooks():
            nb = nbformat.read(path, as_version=4)
            changed = False
            if args.command == "tidy":
                changed |= apply_bootstrap(nb)
            if args.command in ("nbval-reasons", "tidy"):
                changed |= move_nbval_reasons(nb)
            if args.command in ("badge", "tidy"):
                changed |= apply_badge(nb, path)
            if changed:
                nbformat.write(nb, path)
                print(f"updated {path.relative_to(ROOT)}")
        return 0
    paths = [p.resolve() for p in args.notebooks] or all_notebooks()
    if args.command == "execute" and not args.notebooks:
        parser.error("name the notebooks to execute")
    stale = []
    for path in paths:
        if args.command == "execute":
            print(f"executing {path.relative_to(ROOT)}", flush=True)
            execute(path, args.timeout)
            continue
        nb = nbformat.read(path, as_version=4)
        if apply_bootstrap(nb):
            stale.append(path)
            if args.command == "bootstrap":
                nbformat.write(nb, path)
    if args.command == "check" and stale:
        for path in stale:
            print(f"stale bootstrap cell: {path.relative_to(ROOT)} (run tools/nbtool.py bootstrap)")
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    sys.exit(main())
