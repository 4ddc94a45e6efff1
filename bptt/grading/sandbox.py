"""The batch grader's child process: run one submission's code, COLLECT every part, write JSON.

Started by :mod:`bptt.grading.runner` as ``python -I -c "...sandbox.main()"`` in a fresh session
(its own process group), in an empty temporary directory, with a scrubbed environment. It reads
its job (a JSON object) from stdin, then, before any submitted code runs:

1. lowers its own resource limits: address space (memory), CPU time, size of written files, no
   core dumps (setting them here rather than in a ``preexec_fn`` keeps the parent free to
   start children from several threads);
2. loads the exercise's parts (and the instructor's private checks). A submission may
   monkeypatch :mod:`bptt.grading` in the child; that cannot raise its score, because scores are
   computed by the parent from the plain values the learner's functions returned;
3. switches the self-check off and forgets ``BPTT_PRIVATE_CHECKS``;
4. imports the heavy libraries the notebook imports (:func:`preimport`), outside any time limit.

Why in-process ``exec`` and not a Jupyter kernel: one process per submission that the parent
can limit and kill as a whole, no kernel start-up cost or ZMQ ports, no dependence on
jupyter_client being installed, and a failing cell can be recorded and skipped (a kernel run
stops at the first error). What is lost is IPython syntax, which :func:`notebook.strip_magics`
neutralises, and rich display, which grading does not need.

Output: one JSON object per line in the result file, flushed as it goes, so whatever was
collected before a crash survives: ``{"stage": ...}`` before each cell and part,
``{"cell_error": ...}``, ``{"part": name, "record": {...}}`` and finally ``{"done": true}``.

This is containment against accidents and the usual tricks, not a security boundary: the child
runs as the grader's user. Grade untrusted submissions inside a container or VM as well.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import signal
import sys
import traceback

from .notebook import CodeCell, fresh_namespace, run_cells, strip_magics
from .parts import collect_part
from .registry import PRIVATE_CHECKS_ENV, get_exercise
from .selfcheck import enter_batch_mode

PREIMPORTED = ("numpy", "torch", "matplotlib")
"""Libraries imported before the cells run when the notebook imports them (see preimport)."""


class _Sink:
    """A text stream that drops what it is given: submissions' prints go nowhere."""

    def write(self, text):
        return len(text) if isinstance(text, str) else 0

    def flush(self):
        pass

    def isatty(self):
        return False


def apply_resource_limits(memory_mb: int, cpu_s: float, file_mb: int) -> None:
    """Lower this process's memory, CPU-time, file-size and core-dump limits (POSIX only)."""
    try:
        import resource
    except ImportError:  # Windows: no limits, the parent's wall-clock timeout still applies
        return
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large write raises, not kills
    wanted = {
        "RLIMIT_AS": (memory_mb * 2**20, memory_mb * 2**20),
        "RLIMIT_CPU": (int(cpu_s), int(cpu_s) + 5),
        "RLIMIT_FSIZE": (file_mb * 2**20, file_mb * 2**20),
        "RLIMIT_CORE": (0, 0),
    }
    for name, (soft, hard) in wanted.items():
        which = getattr(resource, name, None)
        if which is None:
            continue
        _, old_hard = resource.getrlimit(which)
        if old_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, old_hard), min(hard, old_hard)
        try:
            resource.setrlimit(which, (soft, hard))
        except (ValueError, OSError):  # e.g. RLIMIT_AS on macOS
            pass


def imported_modules(cells: list[CodeCell]) -> list[str]:
    """The absolute module names the cells import, in order (cells that do not parse are skipped)."""
    names: dict[str, None] = {}
    for cell in cells:
        try:
            tree = ast.parse(strip_magics(cell.source))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(dict.fromkeys(alias.name for alias in node.names))
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names[node.module] = None
    return list(names)


def preimport(cells: list[CodeCell]) -> None:
    """Import the heavy libraries (``PREIMPORTED``) that the cells import, before any time limit.

    On a busy machine ``import torch`` alone can take several seconds; charged to a cell's time
    limit, it could be interrupted halfway, which leaves the module broken for the whole run.
    A failing import is left for the cell itself to report.
    """
    for name in imported_modules(cells):
        if name.split(".")[0] in PREIMPORTED:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001, S112 - the cell's own import reports it
                continue


def main() -> None:
    try:
        _grade(json.loads(sys.stdin.read()))
    except BaseException:  # noqa: BLE001 - a grader fault: leave the traceback for the parent
        traceback.print_exc(file=sys.__stderr__)
        sys.__stderr__.flush()
        os._exit(3)
    os._exit(0)  # threads a submission started must not keep the process alive


def _grade(job: dict) -> None:
    apply_resource_limits(job["memory_mb"], job["cpu_s"], job["file_mb"])
    exercise = get_exercise(job["exercise"], private_checks=job.get("private_checks"))
    enter_batch_mode()
    os.environ.pop(PRIVATE_CHECKS_ENV, None)
    cells = [CodeCell(c["number"], c["source"], tuple(c["tags"])) for c in job["cells"]]
    preimport(cells)
    with open(job["result_path"], "w", encoding="utf-8") as result:

        def emit(message: dict) -> None:
            try:  # one flushed line per message, so it survives a crash later on
                result.write(json.dumps(message) + "\n")
                result.flush()
            except (OSError, ValueError):  # file-size limit, or a value JSON cannot encode
                pass

        namespace = fresh_namespace()
        sys.stdout = sys.stderr = _Sink()
        errors = run_cells(
            cells,
            namespace,
            cell_time_limit=job["cell_time_limit"],
            before_cell=lambda cell: emit({"stage": cell.label}),
        )
        for error in errors:
            emit({"cell_error": error})
        for part in exercise.parts:
            emit({"stage": f"part {part.name}"})
            emit(
                {
                    "part": part.name,
                    "record": collect_part(part, namespace, job["seed"], job["part_time_limit"]),
                }
            )
        emit({"done": True})


if __name__ == "__main__":
    main()
