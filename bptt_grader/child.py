"""The program the sandbox runs: execute one submission's cells, then COLLECT what the parent asks.

Started by :mod:`bptt_grader.sandbox` as ``python -I -S /grader/child.py SITE...`` inside
bubblewrap, it sees only the stage (:mod:`bptt_grader.stage`: the learner's library and pruned
COLLECT code), the interpreter and its installed packages. The conversation with the parent:

1. stdin, line 1 (JSON): the cells and the limits. The child lowers its resource limits, imports
   the heavy libraries the cells import, runs every code cell as Jupyter would (IPython's input
   transformers; magics and shell lines are accepted and do nothing; check cells call a
   self-check that does nothing), and answers ``{"cells_done": ...}``.
2. stdin, line 2 (base64 of a pickle, written by the parent, so trusted): each part's name,
   needed functions, COLLECT function, forbidden library functions and *inputs*. The inputs
   exist in this process only after the submission's cells have run.
3. For each part: install the tripwires, COLLECT, remove them, answer ``{"part": ..., "record":
   ...}``; then ``{"parts_done": true}``.
4. stdin, line 3 (the same form): the parts to COLLECT again with references in place of some
   learner functions (:attr:`~bptt.grading.parts.Part.substitutes`), each given as its module and
   source; they arrive only now, when every part they could answer has been collected (the
   parent ignores part records from here on). Answers ``{"substituted": ..., "record": ...}``,
   finally ``{"done": true}``.

Answers go to a duplicate of the stdout pipe; fds 1 and 2 then point at /dev/null, so a print is
never taken for a record. Nothing here is trusted by the parent: it validates every line.
"""

from __future__ import annotations

import ast
import base64
import builtins
import importlib
import json
import os
import pickle
import signal
import sys
import types

PREIMPORTED = ("numpy", "torch", "matplotlib")
TRIPWIRE = "uses {name}, which this part asks you to write yourself"


class _Shell:
    """What ``get_ipython()`` returns here: magics and shell commands do nothing, except that
    ``%%time``/``%%capture``/``%%timeit`` run their cell body."""

    def __init__(self, namespace):
        self.user_ns = namespace

    def run_line_magic(self, name, line, *args, **kwargs):
        return None

    def run_cell_magic(self, name, line, cell):
        if name in ("time", "capture", "timeit"):
            exec(compile(transform(cell), "<cell magic>", "exec"), self.user_ns)  # noqa: S102

    def system(self, command):
        return 0

    def getoutput(self, command, *args, **kwargs):
        return []

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def transform(source: str) -> str:
    """Cell source as IPython turns it into Python (``%magic`` -> ``get_ipython()...``)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # IPython missing: plain Python only
        return source
    return TransformerManager().transform_cell(source)


def apply_limits(limits: dict) -> None:
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large write raises instead of killing
    wanted = {
        "RLIMIT_AS": limits["memory_mb"] * 2**20,
        "RLIMIT_CPU": int(limits["cpu_s"]),
        "RLIMIT_FSIZE": limits["file_mb"] * 2**20,
        "RLIMIT_CORE": 0,
        "RLIMIT_NPROC": limits["pids"],  # 0: not set (it would count all the user's processes)
    }
    if not limits["pids"]:
        del wanted["RLIMIT_NPROC"]
    for name, value in wanted.items():
        which = getattr(resource, name, None)
        if which is None:
            continue
        _, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        upper = value + 5 if name == "RLIMIT_CPU" else value  # SIGXCPU first, SIGKILL later
        if hard != resource.RLIM_INFINITY:
            upper = min(upper, hard)
        try:
            resource.setrlimit(which, (value, upper))
        except (ValueError, OSError):
            pass


def _imports(cells: list[dict]) -> list[str]:
    names: dict[str, None] = {}
    for cell in cells:
        try:
            tree = ast.parse(transform(cell["source"]))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(dict.fromkeys(a.name for a in node.names))
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names[node.module] = None
    return [n for n in names if n.split(".")[0] in PREIMPORTED]


def _resolve(dotted: str):
    """The object named ``dotted`` (``"torch.nn.utils.clip_grad_norm_"``), or None.

    Its module is imported if the notebook has not imported it: otherwise a submission could
    import it inside the graded function, after the tripwires were set, and call it freely.
    """
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except Exception:  # noqa: BLE001, S112
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _raiser(reason: str, freevars: tuple[str, ...]) -> types.CodeType:
    """A code object that raises ``RuntimeError(reason)``, with the given free variables."""
    inner = "\n".join(f"        {v}" for v in freevars) or "        pass"
    assign = "".join(f"    {v} = None\n" for v in freevars)
    text = (
        f"def outer():\n{assign}    def tripwire(*args, **kwargs):\n{inner}\n"
        f"        raise RuntimeError({reason!r})\n    return tripwire\n"
    )
    scope: dict = {}
    exec(compile(text, "<tripwire>", "exec"), scope)  # noqa: S102
    return scope["outer"]().__code__


def install_tripwires(names: list[str]) -> list:
    """Make each function in ``names`` raise with a reason; return what :func:`remove` needs.

    The function's code object is swapped, so references the submission took earlier (``from
    torch.nn.utils import clip_grad_norm_``) trip too.
    """
    undo = []
    for dotted in names:
        obj = _resolve(dotted)
        reason = TRIPWIRE.format(name=dotted)
        target = getattr(obj, "__func__", obj)
        if isinstance(target, types.FunctionType):
            undo.append((target, target.__code__))
            target.__code__ = _raiser(reason, target.__code__.co_freevars)
    return undo


def remove_tripwires(undo: list) -> None:
    for function, code in reversed(undo):
        function.__code__ = code


def drop_privileges(argv: list[str]) -> list[str]:
    """Switch to the user id given as ``--uid=N`` (the grader runs as root); return the rest."""
    rest = []
    for arg in argv:
        if arg.startswith("--uid="):
            uid = int(arg.split("=", 1)[1])
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            if os.getuid() != uid or os.geteuid() != uid:
                raise SystemExit(4)
        else:
            rest.append(arg)
    return rest


def main() -> None:
    site = drop_privileges(sys.argv[1:])
    sys.path[:0] = [os.path.dirname(os.path.abspath(__file__))]
    sys.path.extend(site)
    results = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)

    def emit(message: dict) -> None:
        try:
            results.write(json.dumps(message) + "\n")
            results.flush()
        except (OSError, ValueError, TypeError):
            pass

    try:
        job = json.loads(sys.stdin.readline())
        _run(job, emit)
    except BaseException as error:  # noqa: BLE001 - a fault of the grader: tell the parent
        emit({"fault": f"{type(error).__name__}: {error}"[:300]})
        os._exit(3)
    emit({"done": True})
    os._exit(0)  # threads a submission started must not keep the process alive


def _run(job: dict, emit) -> None:
    apply_limits(job["limits"])
    cells = job["cells"]
    for name in _imports(cells):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001, S112 - the cell itself reports it
            continue
    from bptt.grading.errors import describe_exception, shorten
    from bptt.grading.limits import TimeLimitExceeded, time_limit

    namespace = {"__name__": "__main__", "__builtins__": builtins, "display": lambda *a, **k: None}
    shell = _Shell(namespace)
    namespace["get_ipython"] = lambda: shell
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    limit = job["cell_time_limit"]
    for cell in cells:
        emit({"stage": cell["label"]})
        try:
            code = compile(transform(cell["source"]), f"<code cell {cell['number']}>", "exec")
        except SyntaxError as error:
            emit(
                {
                    "cell_error": f"{cell['label']}: SyntaxError: {shorten(error.msg, 120)} (line {error.lineno})"
                }
            )
            continue
        except Exception as error:  # noqa: BLE001 - NUL bytes, deep nesting, ...
            emit({"cell_error": f"{cell['label']}: {describe_exception(error)}"})
            continue
        try:
            with time_limit(limit):
                exec(code, namespace)  # noqa: S102 - running the notebook is the point
        except TimeLimitExceeded:
            emit({"cell_error": f"{cell['label']}: stopped after {limit:g} s (an endless loop?)"})
        except BaseException as error:  # noqa: BLE001 - learner code: SystemExit too
            emit({"cell_error": f"{cell['label']}: {describe_exception(error)}"})
    emit({"cells_done": True})
    _collect(_read_parts(), namespace, emit, "part")
    emit({"parts_done": True})
    _collect(_read_parts(), namespace, emit, "substituted")


def _read_parts() -> list[dict]:
    return pickle.loads(base64.b64decode(sys.stdin.readline()))


def _reference(module_name: str, function_name: str, source: str):
    """A fresh copy of a library function from the source the parent sent (no tripwire on it),
    its globals those of its module."""
    scope = dict(vars(importlib.import_module(module_name)))
    exec(compile(source, "<reference>", "exec"), scope)  # noqa: S102
    return scope[function_name]


def _collect(parts: list[dict], namespace: dict, emit, key: str) -> None:
    from bptt.grading.parts import collect_with_inputs, substituted

    for part in parts:
        emit({"stage": f"part {part['name']}"})
        module_name, function_name = part["collector"]
        if part.get("source") is not None and module_name not in sys.modules:
            module = types.ModuleType(module_name)
            sys.modules[module_name] = module
            exec(compile(part["source"], "<private checks>", "exec"), module.__dict__)  # noqa: S102
        collect = getattr(importlib.import_module(module_name), function_name)
        replacements = {name: _reference(*where) for name, *where in part["replace"]}
        args = part["name"], part["needs"], collect, part["inputs"], namespace, part["time_limit"]
        undo = install_tripwires(part["forbidden"])
        try:
            with substituted(namespace, part["needs"], replacements):
                record = collect_with_inputs(*args)
        finally:
            remove_tripwires(undo)
        emit({key: part["name"], "record": record})


if __name__ == "__main__":
    main()
