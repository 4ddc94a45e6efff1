"""Maintainer tool for the course notebooks.

    python tools/nbtool.py bootstrap [NOTEBOOK ...]   rewrite the first (bootstrap) cell
    python tools/nbtool.py check [NOTEBOOK ...]       exit 1 if a bootstrap cell is stale
    python tools/nbtool.py execute NOTEBOOK ...       bootstrap, then execute in place

Without paths, `bootstrap` and `check` visit every notebook in chapters/, exercises/ and
solutions/. The repository URL comes from `repository.url` in _config.yml, the one place it
is written; the bootstrap cell is generated from it, so it is never edited by hand.

Notebooks are stored executed (nbval compares their outputs in `make test`): after editing a
notebook, run `execute` on it and commit the result.
"""

from __future__ import annotations

import argparse
import os
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
    parser.add_argument("command", choices=["bootstrap", "check", "execute"])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell (execute)")
    args = parser.parse_args(argv)
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
