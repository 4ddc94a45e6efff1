"""Run the benchmarks and write their tables: ``python -m benchmarks [NAME ...] [--quick]``.

NAME is a module ``benchmarks/bench_NAME.py`` (``numpy_bptt`` or ``bench_numpy_bptt``); with
no names every one runs. Each table is written as ``<table>.json`` and ``<table>.md`` into the
results folder and printed as markdown. ``--quick`` uses small sizes (a smoke test) and, unless
``--results-dir`` says otherwise, writes into ``results/quick/`` so it never replaces the
full-size tables.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

from benchmarks.harness import RESULTS_DIR, log, machine_info, to_markdown, write_table

_PACKAGE_DIR = Path(__file__).resolve().parent


def available() -> list[str]:
    """Names (without the ``bench_`` prefix) of the benchmark modules in this package."""
    return sorted(
        info.name.removeprefix("bench_")
        for info in pkgutil.iter_modules([str(_PACKAGE_DIR)])
        if info.name.startswith("bench_")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"any of {available()}")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=None,
        help=f"output folder (default {RESULTS_DIR.name}/)",
    )
    args = parser.parse_args(argv)

    names = [name.removeprefix("bench_") for name in args.names] or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; available: {available()}")

    results_dir = args.results_dir or (RESULTS_DIR / "quick" if args.quick else RESULTS_DIR)
    info = machine_info()
    for name in names:
        log(f"running bench_{name}{' (quick)' if args.quick else ''} ...")
        module = importlib.import_module(f"benchmarks.bench_{name}")
        for table in module.run(quick=args.quick):
            write_table(table, results_dir)
            print(to_markdown(table, info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
