"""Generate the student notebooks in exercises/ from the solved ones in solutions/.

    python tools/make_exercises.py [exNN ...]           write and execute exercises/exNN_*.ipynb
    python tools/make_exercises.py --no-execute [...]   write them without executing
    python tools/make_exercises.py --check [...]        exit 1 if exercises/ drifted from solutions/

solutions/exNN_topic.ipynb is the source of truth; tools/exercise_stubs.py says what changes
(solution code becomes a NotImplementedError stub, solution-only prose is dropped, the title
"Solution N" becomes "Exercise N"). The generated notebook is then executed, like every
notebook of the course, so its stored outputs show the stubs' zero scores. `--check` compares
sources only (cell types, sources and tags), not outputs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from exercise_stubs import exercise_from_solution
from nbtool import execute


def solution_paths(names: list[str]) -> list[Path]:
    """solutions/exNN_*.ipynb for the given ids (all of them when none is given)."""
    paths = sorted((ROOT / "solutions").glob("ex[0-9][0-9]_*.ipynb"))
    if names:
        paths = [p for p in paths if p.name[:4] in names]
        missing = set(names) - {p.name[:4] for p in paths}
        if missing:
            raise SystemExit(f"no solution notebook for {', '.join(sorted(missing))}")
    return paths


def exercise_for(solution: Path) -> nbformat.NotebookNode:
    """The exercise notebook generated from ``solution`` (not executed)."""
    notebook = nbformat.read(solution, as_version=4)
    return nbformat.from_dict(exercise_from_solution(notebook))


def source_view(notebook) -> list[tuple[str, str, tuple[str, ...]]]:
    """What --check compares: each cell's type, source and tags."""
    return [
        (
            c["cell_type"],
            "".join(c["source"]) if isinstance(c["source"], list) else c["source"],
            tuple(c.get("metadata", {}).get("tags", [])),
        )
        for c in notebook["cells"]
    ]


def drifted(solution: Path) -> str | None:
    """Why exercises/ does not match ``solution``, or None when it does."""
    target = ROOT / "exercises" / solution.name
    if not target.exists():
        return f"exercises/{solution.name} is missing"
    stored = nbformat.read(target, as_version=4)
    if source_view(stored) != source_view(exercise_for(solution)):
        return f"exercises/{solution.name} differs from what solutions/{solution.name} generates"
    if stored.metadata.get("bptt") != exercise_for(solution).metadata.get("bptt"):
        return f"exercises/{solution.name} has other bptt metadata than its solution"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("names", nargs="*", help="exercise ids such as ex04 (default: all)")
    parser.add_argument("--check", action="store_true", help="only report drift")
    parser.add_argument("--no-execute", action="store_true", help="write without executing")
    args = parser.parse_args(argv)
    paths = solution_paths(args.names)
    if args.check:
        problems = [p for p in map(drifted, paths) if p]
        for problem in problems:
            print(f"{problem} (run tools/make_exercises.py)")
        return 1 if problems else 0
    for solution in paths:
        target = ROOT / "exercises" / solution.name
        nbformat.write(exercise_for(solution), target)
        print(f"wrote exercises/{solution.name}", flush=True)
        if not args.no_execute:
            execute(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
