"""The shared measuring kit of the benchmarks: timing, slope fitting, machine facts, tables.

Every benchmark module ``benchmarks/bench_*.py`` exposes ``run(quick: bool = False) ->
list[Table]`` and uses only what is here, so all tables are measured and written the same way:

- :func:`time_call` (from :mod:`bptt.timing`, shared with the chapters) - the median wall-clock time of a call after warm-up runs;
- :func:`time_interleaved` - the same for several calls timed in turns (fair ratios);
  both take ``clock=WALL`` (default) or ``clock=CPU`` (process time, steadier on a busy
  machine for single-threaded code);
- :func:`threads` - a block run with numpy's BLAS and torch limited to n threads
  (``threadpoolctl``; :func:`blas_info` records the BLAS library, kernel and threads);
- :func:`loglog_slope` (from :mod:`bptt.plots`) - the slope of ``log y`` against ``log x``;
- :func:`machine_info` - where the numbers came from (CPU, cores, versions, threads, device);
- :class:`Table` and :func:`write_table` - ``<name>.json`` and ``<name>.md`` in a results folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import math
import os
import platform
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import threadpoolctl

from bptt.plots import loglog_slope  # noqa: F401  (the one slope fit of the repository)
from bptt.timing import CPU, WALL, Clock, time_call, time_interleaved  # noqa: F401  (the kit)

RESULTS_DIR = Path(__file__).resolve().parent / "results"
"""Where ``python -m benchmarks`` writes its tables unless told otherwise."""

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                     "OPENBLAS_CORETYPE")


def blas_info() -> list[dict[str, Any]]:
    """The BLAS libraries numpy has loaded, as ``threadpoolctl`` reports them.

    Each entry names the library (``internal_api``: openblas, mkl, blis), its version, the
    kernel family it runs (``architecture``, which ``OPENBLAS_CORETYPE`` can force) and its
    thread count (``num_threads``).
    """
    keys = ("internal_api", "version", "architecture", "num_threads", "threading_layer")
    return [
        {key: entry.get(key) for key in keys}
        for entry in threadpoolctl.threadpool_info()
        if entry.get("user_api") == "blas"
    ]


def blas_threads() -> int | None:
    """The thread count of the BLAS that numpy uses, or None where none is reported."""
    libraries = blas_info()
    return int(libraries[0]["num_threads"]) if libraries else None


@contextlib.contextmanager
def threads(count: int) -> Iterator[None]:
    """Run the block with numpy's BLAS and (if imported) torch limited to ``count`` threads.

    Both counts are restored afterwards (``threadpoolctl`` for the BLAS). On a shared machine
    one thread gives the steadiest timings: a multithreaded BLAS call waits for its slowest
    thread, which another process may have descheduled.
    """
    torch = sys.modules.get("torch")
    old_torch = torch.get_num_threads() if torch is not None else None
    with threadpoolctl.threadpool_limits(limits=count, user_api="blas"):
        if torch is not None:
            torch.set_num_threads(count)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(old_torch)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _torch_facts() -> dict[str, Any]:
    try:
        import torch
    except ImportError:
        return {"torch": None, "torch_threads": None, "device": "cpu (torch not installed)"}
    device = "cpu"
    if torch.cuda.is_available():
        device = f"cpu + {torch.cuda.get_device_name(0)}"
    return {"torch": torch.__version__, "torch_threads": torch.get_num_threads(), "device": device}


def _load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages: how busy a shared machine was while measuring."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine_info() -> dict[str, Any]:
    """Facts that make a timing reproducible: platform, CPU, cores, versions, threads, device."""
    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas_threads": blas_threads(),
        "blas": blas_info(),
        "load_average": _load_average(),
    }
    info.update(_torch_facts())
    info["thread_env"] = {name: os.environ.get(name) for name in _THREAD_VARIABLES}
    return info


@dataclasses.dataclass
class Table:
    """One result table: ``rows`` are sequences of cells in the order of ``columns``."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    notes: str = ""

    def __post_init__(self) -> None:
        for i, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(
                    f"row {i} of table {self.name!r} has {len(row)} cells, "
                    f"expected {len(self.columns)} (columns {self.columns})"
                )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.4g}"
    return str(value)


def _blas_text(info: dict[str, Any]) -> str:
    libraries = info.get("blas") or []
    if not libraries:
        return f"BLAS threads {info['blas_threads']}"
    first = libraries[0]
    return (f"{first['internal_api']} {first['version']}, kernel {first['architecture']}, "
            f"threads {first['num_threads']}")


def machine_line(info: dict[str, Any]) -> str:
    """A one-line summary of :func:`machine_info` for the foot of a table."""
    return (
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['platform']}; "
        f"Python {info['python']}, numpy {info['numpy']} ({_blas_text(info)}), "
        f"torch {info['torch']} (threads {info['torch_threads']}); device {info['device']}; "
        f"load average {info['load_average']}; {info['date']}."
    )


def to_markdown(table: Table, info: dict[str, Any] | None = None) -> str:
    """The table as GitHub markdown: title, header, rows, notes and the machine line."""
    lines = [f"### {table.title}", ""]
    lines.append("| " + " | ".join(table.columns) + " |")
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    lines.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows)
    if table.notes:
        lines += ["", table.notes]
    if info is not None:
        lines += ["", machine_line(info)]
    return "\n".join(lines) + "\n"


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    return value


def write_table(table: Table, results_dir: str | os.PathLike[str] = RESULTS_DIR) -> list[Path]:
    """Write ``<name>.json`` (table + machine info) and ``<name>.md``; return the two paths."""
    folder = Path(results_dir)
    folder.mkdir(parents=True, exist_ok=True)
    info = machine_info()
    record = dataclasses.asdict(table)
    record["rows"] = [[_json_value(c) for c in row] for row in table.rows]
    record["machine"] = info
    json_path = folder / f"{table.name}.json"
    md_path = folder / f"{table.name}.md"
    json_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(to_markdown(table, info), encoding="utf-8")
    return [json_path, md_path]


def log(message: str) -> None:
    """Progress messages go to stderr, so stdout carries only the tables."""
    print(message, file=sys.stderr, flush=True)
