"""The shared measuring kit of the benchmarks: timing, slope fitting, machine facts, tables.

Every benchmark module ``benchmarks/bench_*.py`` exposes ``run(quick: bool = False) ->
list[Table]`` and uses only what is here, so all tables are measured and written the same way:

- :func:`time_call` (from :mod:`bptt.timing`, shared with the chapters) - the median wall-clock time of a call after warm-up runs;
- :func:`time_interleaved` - the same for several calls timed in turns (fair ratios);
  both take ``clock=WALL`` (default) or ``clock=CPU`` (process time, steadier on a busy
  machine for single-threaded code);
- :func:`threads` - a block run with numpy's BLAS and torch limited to n threads
  (``threadpoolctl``; :func:`blas_info` records the BLAS library, kernel and threads);
- :func:`paired_rounds` - contenders timed in rounds (the order rotates every round), each
  contender's per-round time divided by the reference's of the *same* round: medians of these
  paired ratios with their spread, and the thread counts each contender actually ran with
  (the fairness record a table keeps in ``meta``);
- :func:`gemm_rate` / :func:`torch_gemm_rate` - GFLOP/s of a large square matrix product in a
  given dtype at the threads in force: the machine's practical ceiling, measured in the same run;
- :func:`heap_in_use` - bytes the C allocator holds (``mallinfo2``): what torch's CPU tensors
  and autograd's graph really occupy, which saved-tensor hooks do not all see;
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
import statistics
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
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)
    """How the table was measured: threads per contender, interleaving, rounds, the same-run
    GEMM rate, the load average before and after (see :func:`measurement_meta`)."""

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
    if table.meta:
        lines += ["", meta_line(table.meta)]
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
    record["meta"] = json.loads(json.dumps(table.meta, default=_json_value))
    record["machine"] = info
    json_path = folder / f"{table.name}.json"
    md_path = folder / f"{table.name}.md"
    json_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(to_markdown(table, info), encoding="utf-8")
    return [json_path, md_path]


def log(message: str) -> None:
    """Progress messages go to stderr, so stdout carries only the tables."""
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- fair timing


def _thread_counts() -> dict[str, int | None]:
    torch = sys.modules.get("torch")
    return {"blas": blas_threads(), "torch": torch.get_num_threads() if torch is not None else None}


@dataclasses.dataclass
class Paired:
    """What :func:`paired_rounds` measured: per contender the median seconds, the per-round
    times, the paired ratios to the reference and the thread counts seen while it ran."""

    reference: str
    seconds: dict[str, float]
    times: dict[str, list[float]]
    ratios: dict[str, list[float]]
    threads: dict[str, dict[str, int | None]]
    order: list[str]

    def ratio(self, name: str) -> float:
        """Median over rounds of time(name) / time(reference) in the same round."""
        return statistics.median(self.ratios[name])

    def spread(self, name: str) -> tuple[float, float]:
        """Quartiles (25 %, 75 %) of the paired ratios of ``name``."""
        return quartiles(self.ratios[name])

    def ratio_text(self, name: str) -> str:
        """``median [q25, q75]`` of the paired ratios, for a table cell."""
        low, high = self.spread(name)
        return f"{self.ratio(name):.3g} [{low:.3g}, {high:.3g}]"

    def fairness(self) -> dict[str, Any]:
        """The record tests check: same threads on every side, timed in rotating turns."""
        counts = {json.dumps(c, sort_keys=True) for c in self.threads.values()}
        return {"interleaved": True, "rounds": len(next(iter(self.times.values()))),
                "threads": self.threads, "same_threads": len(counts) == 1}


def quartiles(values: list[float]) -> tuple[float, float]:
    """The 25 % and 75 % quantiles (linear interpolation) of ``values``."""
    data = sorted(values)
    if len(data) == 1:
        return data[0], data[0]
    q = statistics.quantiles(data, n=4, method="inclusive")
    return q[0], q[2]


def paired_rounds(
    fns: dict[str, Any], *, reference: str, rounds: int = 7, warmup: int = 1,
    clock: Clock = WALL,
) -> Paired:
    """Time every contender once per round, in an order that rotates each round.

    Round r runs the contenders starting from the r-th (so none always runs first or right
    after another); ``warmup`` untimed rounds come first. The ratio of a contender is taken
    round by round against ``reference`` (both saw the same moment's load), then summarized by
    its median and quartiles. The thread counts (numpy's BLAS, torch) in force during each
    contender's first warm-up call are recorded, so a table can prove both sides ran alike.
    """
    if reference not in fns:
        raise ValueError(f"reference: expected one of {list(fns)}, got {reference!r}")
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    names = list(fns)
    seen: dict[str, dict[str, int | None]] = {}
    for name in names:
        seen[name] = _thread_counts()
        for _ in range(warmup):
            fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    order: list[str] = []
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            order.append(name)
            start = clock()
            fns[name]()
            times[name].append(clock() - start)
    ratios = {name: [t / ref for t, ref in zip(times[name], times[reference])] for name in names}
    seconds = {name: statistics.median(ts) for name, ts in times.items()}
    return Paired(reference, seconds, times, ratios, seen, order)


def gemm_rate(dtype: Any = np.float64, *, n: int = 1024, repeats: int = 5,
              clock: Clock = WALL) -> float:
    """GFLOP/s of numpy's (n, n) @ (n, n) product (2 n^3 flops), median of ``repeats`` runs,
    at the BLAS threads in force: the practical peak the other numpy timings are set against."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    out = np.empty((n, n), dtype=dtype)
    seconds = time_call(lambda: np.matmul(a, b, out=out), repeats=repeats, warmup=1, clock=clock)
    return 2 * n**3 / seconds / 1e9


def torch_gemm_rate(dtype: Any = None, *, n: int = 1024, repeats: int = 5,
                    clock: Clock = WALL) -> float:
    """GFLOP/s of torch's (n, n) @ (n, n) product on the CPU at torch's threads in force."""
    import torch

    dtype = dtype or torch.float32
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g, dtype=dtype)
    b = torch.randn(n, n, generator=g, dtype=dtype)
    out = torch.empty(n, n, dtype=dtype)
    seconds = time_call(lambda: torch.matmul(a, b, out=out), repeats=repeats, warmup=1,
                        clock=clock)
    return 2 * n**3 / seconds / 1e9


def measurement_meta(**facts: Any) -> dict[str, Any]:
    """The meta record of a table: the facts given, the BLAS (library, kernel, threads),
    ``OPENBLAS_CORETYPE`` as set (never changed here) and the load average now."""
    meta = {"blas": blas_info(), "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
            "load_average": _load_average()}
    meta.update(facts)
    return meta


def meta_line(meta: dict[str, Any]) -> str:
    """One line under a table saying how it was measured (threads, turns, GEMM, load)."""
    parts = []
    if "fairness" in meta:
        fair = meta["fairness"]
        parts.append(f"every contender timed in rotating turns over {fair['rounds']} paired "
                     f"rounds; same thread count on every side: "
                     f"{'yes' if fair['same_threads'] else 'NO'}")
    if "gemm_gflops" in meta:
        rates = ", ".join(f"{k} {v:.1f}" for k, v in meta["gemm_gflops"].items())
        parts.append(f"same-run large-GEMM rate (GFLOP/s): {rates}")
    if "threads" in meta:
        parts.append(f"threads {meta['threads']}")
    kernel = meta.get("blas") or []
    if kernel:
        parts.append(f"BLAS {kernel[0]['internal_api']} {kernel[0]['version']} kernel "
                     f"{kernel[0]['architecture']}")
    parts.append(f"OPENBLAS_CORETYPE={meta.get('OPENBLAS_CORETYPE')}")
    if "load_before" in meta:
        parts.append(f"load average before {meta['load_before']}, after {meta['load_average']}")
    else:
        parts.append(f"load average {meta.get('load_average')}")
    return "Measured: " + "; ".join(parts) + "."


def heap_in_use() -> int | None:
    """Bytes the C allocator holds in use (:func:`bptt.torch.memory.heap_in_use`, glibc
    ``mallinfo2``): torch's CPU tensors and autograd's nodes; None where unavailable."""
    from bptt.torch.memory import heap_in_use as _heap

    return _heap()
