"""The batch grader end to end: one batch of bad submissions, each graded with a clear reason
while the rest of the batch is graded normally; the CLI, the reports and private checks."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bptt.grading.cli import main
from bptt.grading.runner import child_environment

ROOT = Path(__file__).resolve().parent.parent
MAIN_OPTIONS = ["--jobs", "2", "--memory-mb", "1536", "--timeout", "120"]


def _notebook(folder: str, exercise: str) -> dict:
    (path,) = (ROOT / folder).glob(f"{exercise}_*.ipynb")
    return json.loads(path.read_text())


def _code_cell(source: str) -> dict:
    return {
        "cell_type": "code",
        "metadata": {},
        "execution_count": None,
        "outputs": [],
        "source": source,
    }


def _replace_function(notebook: dict, name: str, source: str) -> dict:
    """The notebook with the code cell that defines ``name`` replaced by ``source``."""
    notebook = json.loads(json.dumps(notebook))
    (cell,) = [
        c
        for c in notebook["cells"]
        if c["cell_type"] == "code" and f"def {name}(" in "".join(c["source"])
    ]
    cell["source"] = source
    return notebook


def _add_cell(notebook: dict, source: str, position: int | None = None) -> dict:
    notebook = json.loads(json.dumps(notebook))
    cells = notebook["cells"]
    cells.insert(len(cells) if position is None else position, _code_cell(source))
    return notebook


def _write(path: Path, notebook: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook))


ALWAYS_EQUAL = """
class AlwaysEqual:
    def __eq__(self, other):
        return True

def decay_rate(W):
    return AlwaysEqual()
"""

MONKEYPATCH = """
import bptt.grading as grading
from bptt.grading import Verdict, parts, sandbox

grading.check = lambda *args, **kwargs: print("[ex03] everything: 100/100")
parts.score_part = lambda part, record, seed, exercise_id: parts.PartResult(
    exercise_id, part.name, part.points, part.points, "correct")
sandbox.collect_part = lambda part, functions, seed, limit=None: {"status": "ok", "values": {}}
for part in grading.get_exercise("ex03").parts:
    object.__setattr__(part, "score", lambda inputs, values: Verdict(1.0, "correct"))
"""


SPAWNER = """
import subprocess
sleeper = subprocess.Popen(["sleep", "300"])
with open({pid_file!r}, "w") as stream:
    stream.write(str(sleeper.pid))
"""


def _main_batch(root: Path, pid_file: Path) -> None:
    """Write the submissions of the main batch under ``root``."""
    ex03 = _notebook("solutions", "ex03")
    for exercise in ("ex01", "ex02", "ex03", "ex04"):
        _write(root / "good" / f"{exercise}.ipynb", _notebook("solutions", exercise))
    for exercise in (
        "ex01",
        "ex04",
    ):  # a numpy and a torch exercise; all four are tested in-process
        _write(root / "stubs" / f"{exercise}.ipynb", _notebook("exercises", exercise))
    broken = "def power_iteration(M, v0, num_iters:\n    return 1"
    _write(root / "syntax" / "ex03.ipynb", _replace_function(ex03, "power_iteration", broken))
    raising = _replace_function(ex03, "power_by_eig", "def power_by_eig(M, k):\n    return 1 / 0")
    _write(root / "exception" / "ex03.ipynb", _add_cell(raising, "raise ValueError('boom')", 3))
    bomb = "def power_iteration(M, v0, num_iters):\n    hog = np.ones(5 * 10**8)\n    return hog.sum(), v0"
    _write(root / "memory" / "ex03.ipynb", _replace_function(ex03, "power_iteration", bomb))
    _write(root / "sys_exit" / "ex03.ipynb", _add_cell(ex03, "import sys\nsys.exit('bye')", 3))
    _write(root / "os_exit" / "ex03.ipynb", _add_cell(ex03, "import os\nos._exit(0)", 3))
    renamed = "".join(
        next(c["source"] for c in ex03["cells"] if "def power_iteration(" in "".join(c["source"]))
    )
    renamed = renamed.replace("def power_iteration(", "def power_iter(")
    _write(root / "renamed" / "ex03.ipynb", _replace_function(ex03, "power_iteration", renamed))
    wrong = _replace_function(ex03, "decay_rate", "def decay_rate(W):\n    return 'fast'")
    wrong = _replace_function(wrong, "power_by_eig", "def power_by_eig(M, k):\n    return M[:2]")
    _write(root / "wrong_type" / "ex03.ipynb", wrong)
    nan = "def power_by_eig(M, k):\n    return np.full_like(M, np.nan)"
    _write(root / "nan" / "ex03.ipynb", _replace_function(ex03, "power_by_eig", nan))
    _write(
        root / "always_equal" / "ex03.ipynb", _replace_function(ex03, "decay_rate", ALWAYS_EQUAL)
    )
    _write(
        root / "monkeypatch" / "ex03.ipynb",
        _add_cell(_notebook("exercises", "ex03"), MONKEYPATCH, 3),
    )
    big_file = "with open('big.bin', 'wb') as f:\n    f.write(b'0' * (100 * 2**20))"
    _write(root / "big_file" / "ex03.ipynb", _add_cell(ex03, big_file, 3))
    _write(root / "duplicate" / "first.ipynb", _notebook("exercises", "ex03"))
    _write(root / "duplicate" / "second.ipynb", ex03)
    (root / "empty").mkdir()
    (root / "corrupt.ipynb").write_text('{"cells": [')
    (root / "notes.txt").write_text("my answers are 42")
    _write(
        root / "spawner" / "ex03.ipynb", _add_cell(ex03, SPAWNER.format(pid_file=str(pid_file)), 3)
    )
    _write(root / "homework.ipynb", _notebook("solutions", "ex01"))
    anonymous = _notebook("solutions", "ex01")
    del anonymous["metadata"]["bptt"]
    _write(root / "anonymous.ipynb", anonymous)


def _by_student(report_dir: Path) -> dict:
    return {
        s["student"]: s for s in json.loads((report_dir / "grades.json").read_text())["students"]
    }


def _parts(student: dict) -> dict:
    (submission,) = student["submissions"]
    return {p["part"]: p for p in submission["parts"]}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("submissions")
    pid_file = tmp_path_factory.mktemp("spawned") / "pid"
    _main_batch(root, pid_file)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    out = tmp_path_factory.mktemp("report")
    assert main(["grade", str(root), "--out", str(out), *MAIN_OPTIONS]) == 0
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before, (
        "grading wrote into the submissions"
    )
    return {"students": _by_student(out), "out": out, "pid_file": pid_file}


def test_solutions_score_full_marks(batch):
    good = batch["students"]["good"]
    assert len(good["submissions"]) == 4
    assert good["total"] == good["max_points"] == 43
    assert all(p["reason"] == "correct" for s in good["submissions"] for p in s["parts"])


def test_unanswered_exercises_score_zero(batch):
    stubs = batch["students"]["stubs"]
    assert stubs["total"] == 0 and stubs["max_points"] == 21
    assert all(
        p["reason"] == "not implemented yet" for s in stubs["submissions"] for p in s["parts"]
    )


ANSWERS_BROKEN = {"q1": "", "q2": "", "q3": ""}
"""The solution's answers() calls the learner's functions: when one breaks, every question does."""


def _assert_only(student: dict, broken: dict[str, str], max_points: float = 11) -> None:
    """Parts in ``broken`` score 0 with a reason containing the text given; the rest full marks."""
    parts = _parts(student)
    for name, part in parts.items():
        if name in broken:
            assert part["points"] == 0 and broken[name] in part["reason"], part
        else:
            assert part["points"] == part["max_points"], part
    assert student["max_points"] == max_points


def test_syntax_error(batch):
    _assert_only(batch["students"]["syntax"], {"power_iteration": "SyntaxError"})
    assert (
        "power_iteration is not defined"
        in _parts(batch["students"]["syntax"])["power_iteration"]["reason"]
    )


def test_exception_in_a_cell_and_in_a_function(batch):
    student = batch["students"]["exception"]
    _assert_only(student, {"power_by_eig": "ZeroDivisionError: division by zero", **ANSWERS_BROKEN})
    assert any("ValueError: boom" in note for note in student["submissions"][0]["notes"])


def test_memory_bomb_hits_the_memory_limit(batch):
    _assert_only(batch["students"]["memory"], {"power_iteration": "MemoryError"})


def test_sys_exit_is_recorded_and_grading_goes_on(batch):
    student = batch["students"]["sys_exit"]
    _assert_only(student, {})
    assert any("sys.exit('bye')" in note for note in student["submissions"][0]["notes"])


def test_os_exit_ends_only_that_submission(batch):
    student = batch["students"]["os_exit"]
    assert student["total"] == 0
    assert all("os._exit()" in p["reason"] for p in _parts(student).values())


def test_renamed_function(batch):
    _assert_only(
        batch["students"]["renamed"], {"power_iteration": "power_iteration is not defined"}
    )


def test_wrong_return_type_and_shape(batch):
    _assert_only(
        batch["students"]["wrong_type"],
        {
            "decay_rate": "for a symmetric W: should be numbers, got the text 'fast'",
            "power_by_eig": "M^0, M^1, M^2 and M^7: shape (2, 5), expected (5, 5)",
            **ANSWERS_BROKEN,
        },
    )


def test_nan(batch):
    _assert_only(
        batch["students"]["nan"],
        {"power_by_eig": "M^0, M^1, M^2 and M^7: contains NaN", **ANSWERS_BROKEN},
    )


def test_always_equal_object(batch):
    _assert_only(
        batch["students"]["always_equal"], {"decay_rate": "got an AlwaysEqual", **ANSWERS_BROKEN}
    )


def test_monkeypatching_the_grader_gains_nothing(batch):
    student = batch["students"]["monkeypatch"]
    assert student["total"] == 0
    assert all(p["points"] == 0 for p in _parts(student).values())


def test_file_size_limit(batch):
    student = batch["students"]["big_file"]
    _assert_only(student, {})
    assert any("File too large" in note for note in student["submissions"][0]["notes"])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_processes_a_notebook_starts_are_killed(batch):
    _assert_only(batch["students"]["spawner"], {})
    pid = int(batch["pid_file"].read_text())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid), "the notebook's background process outlived its grading"


def test_best_notebook_of_an_exercise_counts(batch):
    student = batch["students"]["duplicate"]
    assert student["total"] == 11
    assert [s["counted"] for s in student["submissions"]] == [False, True]


@pytest.mark.parametrize(
    ("student", "problem"),
    [
        ("empty", "no notebook (.ipynb file) in the student's folder"),
        ("corrupt", "not a notebook: invalid JSON"),
        ("notes", "not a notebook: notes.txt (expected a .ipynb file)"),
        ("anonymous", "cannot tell which exercise this is"),
    ],
)
def test_files_that_cannot_be_graded_get_a_reason(batch, student, problem):
    entry = batch["students"][student]
    reasons = entry["problems"] + [s["problem"] for s in entry["submissions"]]
    assert entry["total"] == 0
    assert any(problem in (r or "") for r in reasons), reasons


def test_renamed_file_grades_by_its_metadata(batch):
    homework = batch["students"]["homework"]
    assert homework["submissions"][0]["exercise"] == "ex01"
    assert homework["total"] == homework["max_points"] == 10


def test_csv_report(batch):
    with open(batch["out"] / "grades.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == [
        "student",
        "exercise",
        "notebook",
        "part",
        "points",
        "max_points",
        "reason",
    ]
    good = [r for r in rows if r["student"] == "good"]
    assert [r["part"] for r in good if r["exercise"] == "ex01"] == [
        "step_backward",
        "backward",
        "q1",
        "q2",
        "q3",
        "total",
    ]
    assert good[-1]["part"] == "student total" and float(good[-1]["points"]) == 43
    assert {r["student"] for r in rows} == set(batch["students"])


# ----------------------------------------------------------------------------- hangs


def test_endless_loops_are_cut_short(tmp_path):
    ex03 = _notebook("solutions", "ex03")
    endless = "def power_iteration(M, v0, num_iters):\n    while True:\n        pass"
    _write(
        tmp_path / "in" / "endless_function.ipynb",
        _replace_function(ex03, "power_iteration", endless),
    )
    unkillable = (
        "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass"
    )
    _write(tmp_path / "in" / "unkillable.ipynb", _add_cell(ex03, unkillable, 3))
    _write(tmp_path / "in" / "endless_cell.ipynb", _add_cell(ex03, "while True:\n    pass", 3))
    options = ["--jobs", "2", "--timeout", "10", "--cell-timeout", "2", "--part-timeout", "2"]
    assert main(["grade", str(tmp_path / "in"), "--out", str(tmp_path / "out"), *options]) == 0
    students = _by_student(tmp_path / "out")
    _assert_only(students["endless_cell"], {})
    assert any(
        "stopped after 2 s" in note for note in students["endless_cell"]["submissions"][0]["notes"]
    )
    _assert_only(students["endless_function"], {"power_iteration": "did not finish within 2 s"})
    reasons = [p["reason"] for p in _parts(students["unkillable"]).values()]
    assert all(r.startswith("timed out after 10 s while running code cell") for r in reasons), (
        reasons
    )


# ----------------------------------------------------------------------------- CLI, private checks

PRIVATE_CHECKS = """
import numpy as np
from bptt.grading import Part, Verdict
from bptt.grading.hints import array_value, compare

def make_inputs(seed):
    return np.diag([2.0, -0.5])

def collect(functions, M):
    return {"M^3": functions["power_by_eig"](M.copy(), 3)}

def score(M, values):
    return Verdict.from_hints([compare("M^3", array_value(values, "M^3"), M @ M @ M)])

PARTS = {"ex03": [Part("held_out_power", 2, ("power_by_eig",), make_inputs, collect, score)]}
"""


def test_private_checks_from_the_environment(tmp_path, monkeypatch):
    private = tmp_path / "private_checks.py"
    private.write_text(PRIVATE_CHECKS)
    monkeypatch.setenv("BPTT_PRIVATE_CHECKS", str(private))
    _write(tmp_path / "in" / "solved.ipynb", _notebook("solutions", "ex03"))
    _write(tmp_path / "in" / "unsolved.ipynb", _notebook("exercises", "ex03"))
    assert main(["grade", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--jobs", "2"]) == 0
    students = _by_student(tmp_path / "out")
    solved, unsolved = (
        _parts(students["solved"])["held_out_power"],
        _parts(students["unsolved"])["held_out_power"],
    )
    assert (solved["points"], solved["max_points"]) == (2, 2)
    assert (unsolved["points"], unsolved["reason"]) == (0, "not implemented yet")
    assert students["solved"]["max_points"] == 13


def test_broken_private_checks_are_a_usage_error(tmp_path, capsys):
    private = tmp_path / "private_checks.py"
    private.write_text("PARTS = {'ex77': []}")
    (tmp_path / "in").mkdir()
    assert (
        main(
            [
                "grade",
                str(tmp_path / "in"),
                "--out",
                str(tmp_path / "out"),
                "--private-checks",
                str(private),
            ]
        )
        == 2
    )
    assert "unknown exercise 'ex77'" in capsys.readouterr().err
    private.write_text("raise RuntimeError('oops')")
    assert (
        main(
            [
                "grade",
                str(tmp_path / "in"),
                "--out",
                str(tmp_path / "out"),
                "--private-checks",
                str(private),
            ]
        )
        == 2
    )
    assert "failed to load: RuntimeError: oops" in capsys.readouterr().err


def test_module_cli_on_an_empty_folder(tmp_path):
    (tmp_path / "in").mkdir()
    command = [
        sys.executable,
        "-m",
        "bptt.grading",
        "grade",
        str(tmp_path / "in"),
        "--out",
        str(tmp_path / "out"),
    ]
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    assert finished.returncode == 0, finished.stderr
    assert "no submissions found" in finished.stdout
    assert json.loads((tmp_path / "out" / "grades.json").read_text())["students"] == []
    assert (
        tmp_path / "out" / "grades.csv"
    ).read_text().strip() == "student,exercise,notebook,part,points,max_points,reason"


def test_console_script_and_usage_errors(tmp_path, capsys):
    script = Path(sys.executable).parent / "bptt-grade"
    finished = subprocess.run([str(script), "list"], capture_output=True, text=True, check=False)
    assert finished.returncode == 0 and finished.stdout.startswith("ex01 ")
    assert main(["grade", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    (tmp_path / "in").mkdir()
    for option in (["--timeout", "0"], ["--jobs", "0"]):
        assert main(["grade", str(tmp_path / "in"), "--out", str(tmp_path / "out"), *option]) == 2
    single = tmp_path / "in" / "answers.pdf"
    single.write_bytes(b"%PDF")
    assert main(["grade", str(single), "--out", str(tmp_path / "out")]) == 0
    (student,) = _by_student(tmp_path / "out").values()
    assert (
        student["student"] == "answers" and "not a notebook" in student["submissions"][0]["problem"]
    )
    with pytest.raises(SystemExit):
        main(["grade"])


def test_child_environment_is_scrubbed(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_TOKEN", "do-not-leak")
    monkeypatch.setenv("PYTHONPATH", "somewhere")
    env = child_environment(tmp_path)
    assert "SECRET_TOKEN" not in env and "PYTHONPATH" not in env
    assert env["HOME"] == str(tmp_path) and env["OMP_NUM_THREADS"] == "1"
