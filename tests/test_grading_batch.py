"""The batch grader as a security boundary: one batch of hostile submissions, one per attack
category, graded next to the eight solutions. Each attack is held: no marks gained, no other
student's grade or file changed, no file outside the output folder changed, reports written, no
process left. Then the CLI, the reports, the sandbox probe, private checks and timeouts."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from grading_batch_helpers import (
    NO_CARRY_LOOP,
    NO_TANH_STEP,
    REPLAY,
    ROOT,
    add_cell,
    by_student,
    course_notebook,
    parts_of,
    replace_function,
    sandbox_processes,
    tree_digest,
    write,
)

from bptt.grading import exercise_ids, get_exercise, run_checks
from bptt.grading.notebook import notebook_namespace
from bptt_grader import sandbox
from bptt_grader.cli import main
from bptt_grader.report import neutralise, write_atomically

EXERCISES = exercise_ids()
SEED = 1
OPTIONS = ["--jobs", "2", "--seed", str(SEED), "--memory-mb", "1536", "--timeout", "150", "--quiet"]
SECRET = "BPTT_TEST_INSTRUCTOR_SECRET"

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or not Path("/usr/bin/bwrap").exists(),
    reason="needs bubblewrap (Linux)",
)

# ----------------------------------------------------------------------------- hostile cells

PROBE = """
import glob, os, socket
def step_backward(dh, cache):
    seen = {{}}
    seen["env"] = os.environ.get({secret!r})
    seen["private"] = os.path.exists({private!r})
    seen["repo"] = os.path.exists({repo!r})
    seen["classmate"] = os.path.exists({classmate!r})
    seen["out"] = os.path.exists({out!r})
    seen["solutions"] = len(glob.glob("/*/solutions/*.ipynb") + glob.glob({parent!r} + "/*/solutions/*.ipynb")
                            + glob.glob({root!r} + "/solutions/*.ipynb") + glob.glob("/grader/**/*.ipynb", recursive=True))
    seen["py"] = "ex04_tanh_rnn_backward.py" in os.listdir(os.path.join(os.path.dirname(__import__("bptt").__file__), "grading", "exercises"))
    try:
        socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
        seen["net"] = "connected"
    except OSError as error:
        seen["net"] = type(error).__name__[:12]
    try:
        with open("/tmp/big.bin", "wb") as f:
            f.write(b"0" * (200 * 2**20))
        seen["disk"] = "wrote 200 MB"
    except OSError as error:
        seen["disk"] = type(error).__name__
    seen["pids"] = len([p for p in os.listdir("/proc") if p.isdigit()])
    seen["uid"] = os.getuid()
    raise RuntimeError("PROBE " + repr(seen).replace("'", "").replace(" ", ""))
"""

REFERENCE = """
from bptt import rnn
shortcut = rnn.step_backward          # taken before the part runs: still a tripwire
def step_backward(dh_t, cache):
    return shortcut(dh_t, cache)
"""

REFERENCE_BACKWARD = """
def backward(dh, caches):
    from bptt.grading.exercises.ex04_tanh_rnn_backward import _sequence_autograd
    return _sequence_autograd({"dh": dh, "caches": caches})[0]
"""

TORCH_FREE = """
_answers = answers
def answers():
    import sys
    if "torch" in sys.modules:
        raise RuntimeError("torch was imported for a numpy exercise")
    return _answers()
"""

DIGEST = '''
import hashlib, os, re, bptt
def answers():
    """q3 from the digests in the grader's source, if the sandbox shows any."""
    found = []
    for folder, _, files in os.walk(os.path.dirname(bptt.__file__)):
        for name in files:
            if name.endswith(".py"):
                found += re.findall(r"[0-9a-f]{64}", open(os.path.join(folder, name)).read())
    for letter in "abc":
        digest = hashlib.sha256(f"bptt:ex04:q3:{letter}".encode()).hexdigest()
        if digest in found:
            return {"q3": letter}
    return {"q3": "z"}
'''

SOLUTION_HUNT = """
import glob
for path in glob.glob("/*/solutions/ex04*.ipynb") + glob.glob({root!r} + "/solutions/ex04*.ipynb") + glob.glob({parent!r} + "/*/solutions/ex04*.ipynb"):
    import json
    for cell in json.load(open(path))["cells"]:
        if cell["cell_type"] == "code":
            try:
                exec("".join(cell["source"]))
            except Exception:
                pass
""".replace("{root!r}", repr(str(ROOT))).replace("{parent!r}", repr(str(ROOT.parent)))

FORGE = """
import json, os
def power_by_eig(M, k):
    fake = {"status": "ok", "values": {f"M^{j}": {"shape": [3, 3], "data": [0.0] * 9} for j in (0, 1, 5)}}
    for fd in range(3, 40):
        for part in ("power_by_eig", "power_iteration", "decay_rate", "q1"):
            try:
                os.write(fd, (json.dumps({"part": part, "record": fake}) + "\\n").encode())
            except OSError:
                pass
    return np.zeros_like(M)
"""

REWRITE = """
import glob, os, sys, bptt
targets = glob.glob(os.path.dirname(bptt.__file__) + "/**/*.py", recursive=True)
targets += [{repo_file!r}, {venv_pth!r}]
targets += [p + "/evil.pth" for p in sys.path if p.endswith("site-packages")]
for target in targets:
    try:
        with open(target, "a") as f:
            f.write("\\nraise SystemExit('rewritten')\\n")
    except OSError:
        pass
"""

DAEMON = """
import os, signal, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(2)
        for path in ({report!r}, {marker!r}):
            try:
                open(path, "w").write("forged")
            except OSError:
                pass
        while True:
            time.sleep(1)
    os._exit(0)
for pid in range(1, 400):
    if pid != os.getpid():
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except OSError:
                pass
"""

MEMORY = """
import os, time
import numpy as np
for _ in range(4):
    if os.fork() == 0:
        hog = np.ones(60 * 2**20)  # 480 MB each, touched; four of them pass the 1536 MB of the notebook
        time.sleep(60)
        os._exit(0)
time.sleep(60)
"""

FORK_BOMB = """
import os, time
children = 0
try:
    while children < 10000:
        if os.fork() == 0:
            time.sleep(120)
            os._exit(0)
        children += 1
except OSError:
    pass
"""

CLASSMATE = """
import os
for path in ({classmate!r},):
    for action in ("read", "write", "delete"):
        try:
            if action == "read":
                open(path).read()
            elif action == "write":
                open(path, "w").write("{{}}")
            else:
                os.remove(path)
        except OSError:
            pass
"""

JUPYTER_HELPER = """
def _nonzero(x):
    return (
        x
        != 0
    )


def _remainder(a, b):
    return (
        a
        % b
    )
"""

JUPYTER_WRAP = """
%matplotlib inline
_original = power_by_eig


def power_by_eig(M, k):
    assert _nonzero(1) and _remainder(7, 4) == 3 and boot_np is np
    return _checked(_original(M, k))
"""


LATE_AUTOGRAD = """
_by_hand = truncated_gradient


def truncated_gradient(theta, u, T, y, tau):
    import torch  # imported only now, after the part's tripwires were set

    x = torch.ones((), dtype=torch.float64, requires_grad=True)
    torch.autograd.grad(2 * x, x)
    return _by_hand(theta, u, T, y, tau)
"""


def _clip_shortcut(notebook):
    source = "import torch\n_clip = torch.nn.utils.clip_grad_norm_\n\ndef clip_grad_norm(parameters, max_norm):\n    return _clip(list(parameters), max_norm)\n"
    return replace_function(notebook, "clip_grad_norm", source)


def _make_batch(root: Path, outside: Path, out: Path, port: int) -> dict:
    """Write the batch; return the paths the test checks afterwards."""
    for exercise in EXERCISES:
        write(root / "good" / f"{exercise}.ipynb", course_notebook("solutions", exercise))
        write(root / "blank" / f"{exercise}.ipynb", course_notebook("exercises", exercise))
    classmate = root / "good" / "ex07.ipynb"
    stub01, sol03 = course_notebook("exercises", "ex04"), course_notebook("solutions", "ex07")
    private = outside / "private_checks.py"
    private.write_text("PARTS = {}\n")
    probe = PROBE.format(secret=SECRET, private=str(private), repo=str(ROOT / "solutions"),
                         classmate=str(classmate), out=str(out), port=port,
                         root=str(ROOT), parent=str(ROOT.parent))  # fmt: skip
    write(root / "probe" / "ex04.ipynb", replace_function(stub01, "step_backward", probe))
    reference = replace_function(stub01, "step_backward", REFERENCE)
    write(
        root / "reference" / "ex04.ipynb",
        replace_function(reference, "backward", REFERENCE_BACKWARD),
    )
    write(root / "digest" / "ex04.ipynb", replace_function(stub01, "answers", DIGEST))
    sol01 = course_notebook("solutions", "ex04")
    write(root / "wrongstep" / "ex04.ipynb", replace_function(sol01, "step_backward", NO_TANH_STEP))
    write(root / "wrongloop" / "ex04.ipynb", replace_function(sol01, "backward", NO_CARRY_LOOP))
    replay = replace_function(stub01, "backward", "# backward is defined with step_backward")
    write(root / "replayer" / "ex04.ipynb", replace_function(replay, "step_backward", REPLAY))
    write(root / "light" / "ex04.ipynb", add_cell(sol01, TORCH_FREE))
    write(root / "hunter" / "ex04.ipynb", add_cell(stub01, SOLUTION_HUNT))
    stub03 = course_notebook("exercises", "ex07")
    write(root / "forger" / "ex07.ipynb", replace_function(stub03, "power_by_eig", FORGE))
    write(root / "shortcut" / "ex08.ipynb", _clip_shortcut(course_notebook("solutions", "ex08")))
    xi = "import bptt.truncation\n\ndef sample_xi(T, pi, rng):\n    return bptt.truncation.sample_xi((T,), pi, rng)\n"
    write(
        root / "shortcut" / "ex13.ipynb",
        replace_function(course_notebook("solutions", "ex13"), "sample_xi", xi),
    )
    write(root / "shortcut" / "ex12.ipynb", add_cell(course_notebook("solutions", "ex12"), LATE_AUTOGRAD))
    venv_pth = next(Path(sys.prefix).glob("lib/python3*/site-packages")) / "a-rewrite.pth"
    rewrite = REWRITE.format(
        repo_file=str(ROOT / "bptt" / "grading" / "parts.py"), venv_pth=str(venv_pth)
    )
    write(root / "rewriter" / "ex07.ipynb", add_cell(stub03, rewrite, 3))
    marker = outside / "daemon-was-here"
    daemon = DAEMON.format(report=str(out / "grades.csv"), marker=str(marker))
    write(root / "daemon" / "ex07.ipynb", add_cell(sol03, daemon, 3))
    write(root / "memory" / "ex07.ipynb", add_cell(sol03, MEMORY, 3))
    write(root / "forkbomb" / "ex07.ipynb", add_cell(sol03, FORK_BOMB, 3))
    write(
        root / "copier" / "ex07.ipynb",
        add_cell(stub03, CLASSMATE.format(classmate=str(classmate)), 3),
    )
    jupyter = add_cell(sol03, "import numpy as boot_np", 0, tags=("bootstrap",))
    jupyter = add_cell(
        jupyter, JUPYTER_HELPER + "\n\ndef _checked(x):\n    return x\n", 6, tags=("check",)
    )
    jupyter = add_cell(jupyter, JUPYTER_HELPER, 3)
    write(root / "jupyter" / "ex07.ipynb", add_cell(jupyter, JUPYTER_WRAP, 8))
    # discovery: links, hidden names, FIFOs, formulas, several notebooks per exercise
    (root / "linked").symlink_to(ROOT / "solutions", target_is_directory=True)
    (root / "evil.ipynb").symlink_to(ROOT / "solutions" / "ex04_tanh_rnn_backward.ipynb")
    write(root / ".hidden" / "ex04.ipynb", course_notebook("solutions", "ex04"))
    write(root / "__MACOSX" / "ex04.ipynb", course_notebook("solutions", "ex04"))
    (root / "piped").mkdir()
    os.mkfifo(root / "piped" / "ex07.ipynb")
    write(root / "=HYPERLINK(0)" / "ex07.ipynb", stub03)
    for student in ("twice", "manifest"):
        write(root / student / "ex07_old.ipynb", sol03)
        write(root / student / "ex07_new.ipynb", stub03)
        os.utime(root / student / "ex07_old.ipynb", (1e9, 1e9))
    (root / "manifest" / "manifest.json").write_text('{"ex07": "ex07_old.ipynb"}')
    return {"marker": marker, "classmate": classmate, "private": private}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("submissions")
    outside = tmp_path_factory.mktemp("outside")
    out = tmp_path_factory.mktemp("report")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.setblocking(False)
    paths = _make_batch(root, outside, out, listener.getsockname()[1])
    watched = [ROOT / "bptt", ROOT / "bptt_grader", ROOT / "solutions", Path(sys.prefix) / "lib"]
    before_repo = {k: len(v) for k, v in tree_digest(*watched[:3]).items()}
    before_venv = sorted(
        p.name for p in next(Path(sys.prefix).glob("lib/python3*/site-packages")).glob("*.pth")
    )
    before_subs = tree_digest(root)
    os.environ[SECRET] = "do-not-leak"
    started = time.monotonic()
    try:
        status = main(["grade", str(root), "--out", str(out), *OPTIONS])
    finally:
        del os.environ[SECRET]
    seconds = time.monotonic() - started
    report_after = (out / "grades.csv").read_bytes()
    time.sleep(3)  # a daemon that survived would write now
    try:
        accepted = listener.accept()
    except BlockingIOError:
        accepted = None
    listener.close()
    return {
        "status": status, "students": by_student(out), "out": out, "paths": paths, "seconds": seconds,
        "report_after": report_after, "accepted": accepted,
        "repo_unchanged": before_repo == {k: len(v) for k, v in tree_digest(*watched[:3]).items()},
        "venv_pth": before_venv == sorted(p.name for p in next(Path(sys.prefix).glob("lib/python3*/site-packages")).glob("*.pth")),
        "subs_unchanged": before_subs == tree_digest(root),
    }  # fmt: skip


def _total(batch, student: str, exercise: str) -> float:
    return batch["students"][student]["exercises"][exercise]


def test_the_batch_finishes_with_reports_and_leaves_nothing_running(batch):
    assert batch["status"] == 0
    for name in ("grades.json", "grades.csv", "gradebook.csv"):
        assert (batch["out"] / name).is_file()
    assert sandbox_processes() == []
    print(f"graded the batch in {batch['seconds']:.0f} s")


def test_solutions_score_full_marks_and_self_check_agrees(batch):
    """What scores in the self-check scores in the batch, part by part, on the same inputs."""
    good = batch["students"]["good"]
    assert good["total"] == good["max_points"] == sum(get_exercise(e).max_points for e in EXERCISES)
    for submission in good["submissions"]:
        exercise = submission["exercise"]
        if exercise in ("ex09", "ex18"):
            continue  # training challenges, trained again in-process in their own test files
        namespace, errors = notebook_namespace(
            ROOT / "solutions" / Path(next((ROOT / "solutions").glob(f"{exercise}_*.ipynb")).name)
        )
        assert errors == []
        names = get_exercise(exercise).names
        in_process = {
            r.part: r.points
            for r in run_checks(exercise, {n: namespace[n] for n in names}, seed=SEED)
        }
        assert in_process == {p["part"]: p["points"] for p in submission["parts"]}, exercise


def test_stubs_and_planted_bugs_score_zero_and_self_check_agrees(batch):
    """Every exercise notebook as handed out (stubs, or a find-the-bug exercise's planted code)
    earns nothing in the batch, with the same reason per part as its self-check."""
    blank = batch["students"]["blank"]
    assert blank["total"] == 0 and len(blank["submissions"]) == len(EXERCISES)
    for exercise in EXERCISES:
        namespace, errors = notebook_namespace(next((ROOT / "exercises").glob(f"{exercise}_*.ipynb")))
        assert errors == []
        functions = {n: namespace[n] for n in get_exercise(exercise).names}
        in_process = {
            r.part: (r.points, r.reason) for r in run_checks(exercise, functions, seed=SEED)
        }
        batch_parts = parts_of(blank, exercise)
        assert in_process == {p: (r["points"], r["reason"]) for p, r in batch_parts.items()}, exercise


def test_partial_credit_by_substitution_agrees_with_the_self_check(batch):
    """A wrong step_backward costs the step part only; a wrong loop costs backward; the batch
    gives the same points and reasons as the self-check of the same notebook on the same inputs."""
    root = batch["paths"]["classmate"].parent.parent
    for student in ("wrongstep", "wrongloop"):
        namespace, errors = notebook_namespace(root / student / "ex04.ipynb")
        assert errors == []
        functions = {n: namespace[n] for n in get_exercise("ex04").names}
        in_process = {
            r.part: (r.points, r.reason) for r in run_checks("ex04", functions, seed=SEED)
        }
        batch_parts = parts_of(batch["students"][student])
        assert in_process == {p: (r["points"], r["reason"]) for p, r in batch_parts.items()}
    wrongstep = parts_of(batch["students"]["wrongstep"])
    assert wrongstep["step_backward"]["points"] == 0 and wrongstep["backward"]["points"] == 4
    assert (
        "in place of yours: correct; with your own step_backward: "
        in wrongstep["backward"]["reason"]
    )
    assert parts_of(batch["students"]["wrongloop"])["backward"]["points"] == 0


def test_a_substituted_reference_cannot_answer_the_step_part(batch):
    parts = parts_of(batch["students"]["replayer"])
    assert parts["step_backward"]["points"] == parts["backward"]["points"] == 0


@pytest.mark.negative_control
def test_part_records_after_the_substituted_phase_began_are_ignored():
    """The replayer's forged record would count if it came before ``parts_done``."""
    talk = type("Talk", (), {"failure": None})()
    forged = {"part": "step_backward", "record": "forged"}
    for before, expected in ((False, "own"), (True, "forged")):
        talk.messages = [{"part": "step_backward", "record": "own"}, {"parts_done": True},
                         {"substituted": "backward", "record": "again"}, forged, {"done": True}]  # fmt: skip
        if before:
            talk.messages.insert(1, talk.messages.pop(3))
        run = sandbox._summarise(talk, 0)
        assert run.records == {"step_backward": expected}
        assert run.substituted == {"backward": "again"}


def test_a_numpy_exercise_never_imports_torch_in_the_sandbox(batch):
    student = batch["students"]["light"]
    assert student["total"] == get_exercise("ex04").max_points, student


def test_nothing_is_visible_inside_the_sandbox(batch):
    (reason,) = [
        p["reason"] for p in parts_of(batch["students"]["probe"]).values() if "PROBE" in p["reason"]
    ]
    text = reason.split("PROBE ", 1)[1].strip("{}")
    seen = dict(item.split(":", 1) for item in text.split(","))
    assert seen["env"] == "None" and seen["private"] == seen["repo"] == "False"
    assert seen["classmate"] == seen["out"] == "False" and seen["solutions"] == "0"
    assert seen["net"] in ("ConnectionRe", "OSError", "TimeoutError")
    assert batch["accepted"] is None, "the sandbox reached the grader's network"
    assert seen["disk"] == "OSError" and int(seen["pids"]) < 10
    assert int(seen["uid"]) >= sandbox.SLOT_UID
    assert seen["py"] == "True"  # pruned, see the next test


def test_reference_functions_and_grader_internals_give_no_marks(batch):
    parts = parts_of(batch["students"]["reference"])
    assert parts["step_backward"]["points"] == 0
    assert (
        "uses bptt.rnn.step_backward, which this part asks you to write"
        in parts["step_backward"]["reason"]
    )
    assert parts["backward"]["points"] == 0 and "_sequence_autograd" in parts["backward"]["reason"]
    assert parts_of(batch["students"]["digest"])["q3"]["points"] == 0
    assert batch["students"]["hunter"]["total"] == 0


def test_library_shortcuts_trip(batch):
    student = batch["students"]["shortcut"]
    clip = parts_of(student, "ex08")["clip_grad_norm"]
    assert clip["points"] == 0 and "uses torch.nn.utils.clip_grad_norm_" in clip["reason"]
    xi = parts_of(student, "ex13")["sample_xi"]
    assert xi["points"] == 0 and "uses bptt.truncation.sample_xi" in xi["reason"]
    assert parts_of(student, "ex08")["clip_grad_value"]["points"] > 0  # the rest still counts
    late = parts_of(student, "ex12")["truncated_gradient"]  # a numpy notebook, torch imported late
    assert late["points"] == 0 and "uses torch.autograd.grad" in late["reason"]


def test_forged_records_gain_nothing(batch):
    assert batch["students"]["forger"]["total"] == 0


def test_rewriting_the_grader_or_the_environment_fails(batch):
    assert batch["repo_unchanged"] and batch["venv_pth"]
    assert batch["students"]["rewriter"]["total"] == 0
    assert _total(batch, "good", "ex07") == get_exercise("ex07").max_points


def test_daemons_and_signals_cannot_touch_the_reports_or_the_grader(batch):
    assert not batch["paths"]["marker"].exists()
    assert (batch["out"] / "grades.csv").read_bytes() == batch["report_after"]
    assert batch["students"]["daemon"]["submissions"][0]["problem"] is None


def test_classmates_files_and_grades_are_out_of_reach(batch):
    assert batch["subs_unchanged"]
    assert batch["students"]["copier"]["total"] == 0


def test_memory_of_all_processes_together_is_limited(batch):
    (submission,) = batch["students"]["memory"]["submissions"]
    assert submission["total"] == 0
    assert any(
        "used more than 1536 MB of memory (all its processes together)" in n
        for n in submission["notes"]
    )


def test_a_fork_bomb_is_held(batch):
    """The process limit stops the bomb; the notebook goes on and is graded."""
    assert _total(batch, "forkbomb", "ex07") == get_exercise("ex07").max_points


def test_jupyter_semantics(batch):
    """Black-formatted `!=`/`%` continuation lines, a bootstrap import, a helper defined in a
    check cell and a line magic: full marks, as in Jupyter."""
    assert _total(batch, "jupyter", "ex07") == get_exercise("ex07").max_points


def test_skipped_entries_are_listed_with_reasons(batch):
    skipped = {e["entry"]: e["reason"] for s in batch["students"].values() for e in s["skipped"]}
    assert "symbolic link" in skipped["linked"] and "symbolic link" in skipped["evil.ipynb"]
    assert "hidden" in skipped[".hidden"] and "hidden" in skipped["__MACOSX"]
    assert "not a regular file" in skipped["piped/ex07.ipynb"]
    assert "linked" not in batch["students"] or batch["students"]["linked"]["submissions"] == []


def test_the_newest_or_the_manifests_notebook_counts_never_the_best(batch):
    assert _total(batch, "twice", "ex07") == 0
    not_counted = [s for s in batch["students"]["twice"]["submissions"] if not s["counted"]]
    assert [s["notebook"] for s in not_counted] == ["twice/ex07_old.ipynb"]
    assert "newer notebook" in not_counted[0]["not_counted_because"]
    assert _total(batch, "manifest", "ex07") == get_exercise("ex07").max_points


def test_gradebook_imports_and_neutralises_formulas(batch):
    with open(batch["out"] / "gradebook.csv", newline="") as stream:
        rows = list(csv.reader(stream))
    header, body = rows[0], {r[0]: r for r in rows[1:]}
    course_max = sum(get_exercise(e).max_points for e in EXERCISES)
    assert (
        header[0] == "student"
        and header[1] == f"{EXERCISES[0]} (max {get_exercise(EXERCISES[0]).max_points:g})"
    )
    assert header[-2] == f"total (max {course_max:g})" and header[-1] == "sandbox"
    assert float(body["good"][-2]) == course_max and body["good"][-1] == "bubblewrap"
    assert "'=HYPERLINK(0)" in body and "=HYPERLINK(0)" not in body
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert neutralise("@SUM(A1)") == "'@SUM(A1)" and neutralise(3.0) == 3.0


# ----------------------------------------------------------------------------- smaller batches


def test_endless_loops_and_timeouts(tmp_path):
    ex07 = course_notebook("solutions", "ex07")
    endless = "def power_iteration(M, v0, num_iters):\n    while True:\n        pass"
    write(
        tmp_path / "in" / "endless_function.ipynb",
        replace_function(ex07, "power_iteration", endless),
    )
    unkillable = (
        "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass"
    )
    write(tmp_path / "in" / "unkillable.ipynb", add_cell(ex07, unkillable, 3))
    options = [
        "--jobs",
        "2",
        "--timeout",
        "12",
        "--cell-timeout",
        "2",
        "--part-timeout",
        "2",
        "--quiet",
    ]
    assert main(["grade", str(tmp_path / "in"), "--out", str(tmp_path / "out"), *options]) == 0
    students = by_student(tmp_path / "out")
    endless_parts = parts_of(students["endless_function"])
    assert (
        endless_parts["power_iteration"]["reason"] == "did not finish within 2 s (an endless loop?)"
    )
    assert endless_parts["power_by_eig"]["reason"] == "correct"
    reasons = [p["reason"] for p in parts_of(students["unkillable"]).values()]
    assert all(r.startswith("timed out after 12 s while running code cell") for r in reasons), (
        reasons
    )
    assert sandbox_processes() == []


PRIVATE_CHECKS = """
import numpy as np
from bptt.grading import Part, Verdict
from bptt.grading.hints import array_value, compare

HELD_OUT_SECRET = "only the grader knows"

def make_inputs(seed):
    return np.diag([2.0, -0.5])

def collect(functions, M):
    return {"M^3": functions["power_by_eig"](M.copy(), 3)}

def score(M, values):
    assert HELD_OUT_SECRET
    return Verdict.from_hints([compare("M^3", array_value(values, "M^3"), M @ M @ M)])

PARTS = {"ex07": [Part("held_out_power", 2, ("power_by_eig",), make_inputs, collect, score)]}
"""


def test_private_checks_run_pruned_in_the_sandbox(tmp_path, monkeypatch):
    private = tmp_path / "private_checks.py"
    private.write_text(PRIVATE_CHECKS)
    monkeypatch.setenv("BPTT_PRIVATE_CHECKS", str(private))
    write(tmp_path / "in" / "solved.ipynb", course_notebook("solutions", "ex07"))
    write(tmp_path / "in" / "unsolved.ipynb", course_notebook("exercises", "ex07"))
    assert (
        main(
            [
                "grade",
                str(tmp_path / "in"),
                "--out",
                str(tmp_path / "out"),
                "--jobs",
                "2",
                "--quiet",
            ]
        )
        == 0
    )
    students = by_student(tmp_path / "out")
    solved, unsolved = (
        parts_of(students["solved"])["held_out_power"],
        parts_of(students["unsolved"])["held_out_power"],
    )
    assert (solved["points"], solved["max_points"]) == (2, 2)
    assert (unsolved["points"], unsolved["reason"]) == (0, "not implemented yet")
    from bptt_grader.stage import prune

    pruned = prune(PRIVATE_CHECKS, {"collect"})
    assert "def collect" in pruned and "score" not in pruned and "HELD_OUT_SECRET" not in pruned


def test_broken_private_checks_are_a_usage_error(tmp_path, capsys):
    private = tmp_path / "private_checks.py"
    private.write_text("PARTS = {'ex77': []}")
    (tmp_path / "in").mkdir()
    args = [
        "grade",
        str(tmp_path / "in"),
        "--out",
        str(tmp_path / "out"),
        "--private-checks",
        str(private),
    ]
    assert main(args) == 2
    assert "unknown exercise 'ex77'" in capsys.readouterr().err


def test_no_sandbox_marks_every_row_and_missing_bwrap_is_refused(tmp_path, monkeypatch, capsys):
    write(tmp_path / "in" / "ex07.ipynb", course_notebook("solutions", "ex07"))
    assert (
        main(
            [
                "grade",
                str(tmp_path / "in"),
                "--out",
                str(tmp_path / "out"),
                "--no-sandbox",
                "--quiet",
            ]
        )
        == 0
    )
    with open(tmp_path / "out" / "grades.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert rows and all(r["sandbox"].startswith("NOT SANDBOXED") for r in rows)
    assert by_student(tmp_path / "out")["ex07"]["total"] == get_exercise("ex07").max_points
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    assert main(["grade", str(tmp_path / "in"), "--out", str(tmp_path / "out2")]) == 3
    assert "apt-get install bubblewrap" in capsys.readouterr().err
    assert not (tmp_path / "out2").exists()


def test_a_namespace_this_machine_refuses_is_dropped_with_a_reason():
    def runs(bwrap, flags, user=None):
        return "--unshare-net" not in flags

    support = sandbox.probe(which=lambda name: "/usr/bin/bwrap", runs=runs)
    assert "--unshare-net" not in support.flags
    assert any("--unshare-net is not permitted" in n for n in support.notes)
    with pytest.raises(sandbox.SandboxUnavailable, match="cannot create a sandbox"):
        sandbox.probe(which=lambda name: "/usr/bin/bwrap", runs=lambda *a, **k: False)


def test_reports_are_written_atomically_past_whatever_blocks_them(tmp_path):
    (tmp_path / "grades.csv").mkdir()
    os.mkfifo(tmp_path / "grades.json")
    write_atomically(tmp_path / "grades.csv", "a,b\n")
    write_atomically(tmp_path / "grades.json", "{}\n")
    assert (tmp_path / "grades.csv").read_text() == "a,b\n" and (
        tmp_path / "grades.json"
    ).read_text() == "{}\n"
    assert len(list(tmp_path.glob("grades.csv.blocked-*"))) == 1
    assert not list(tmp_path.glob(".grades*"))


def test_cli_usage_errors_and_console_script(tmp_path, capsys):
    script = Path(sys.executable).parent / "bptt-grade"
    if script.exists():
        finished = subprocess.run(
            [str(script), "list"], capture_output=True, text=True, check=False
        )
        assert finished.returncode == 0 and finished.stdout.startswith(f"{EXERCISES[0]} ")
    assert main(["grade", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 2
    (tmp_path / "in").mkdir()
    assert main(["grade", str(tmp_path / "in"), "--out", str(tmp_path / "in" / "out")]) == 2
    assert "must not be inside" in capsys.readouterr().err
    for option in (["--timeout", "0"], ["--jobs", "0"]):
        assert main(["grade", str(tmp_path / "in"), "--out", str(tmp_path / "out"), *option]) == 2
    command = [
        sys.executable,
        "-m",
        "bptt_grader",
        "grade",
        str(tmp_path / "in"),
        "--out",
        str(tmp_path / "out"),
    ]
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    assert finished.returncode == 0 and "no submissions found" in finished.stdout, finished.stderr
    assert json.loads((tmp_path / "out" / "grades.json").read_text())["students"] == []


def test_graders_on_one_machine_never_share_a_sandbox_user_id():
    """Two graders with one user id would kill (and count the memory of) each other's
    sandboxes: each claims its slots, and a slot with a process left under its id is skipped."""
    with sandbox.claimed_slots(2) as first, sandbox.claimed_slots(2) as second:
        assert len(set(first) | set(second)) == 4
    if os.geteuid() != 0:
        return  # only root can start a process under a sandbox user id
    with sandbox.claimed_slots(1) as (free,):
        pass
    uid = sandbox.SLOT_UID + free
    leftover = subprocess.Popen(["sleep", "60"], user=uid, group=uid)
    try:
        with sandbox.claimed_slots(1) as (other,):
            assert other != free
    finally:
        leftover.kill()
        leftover.wait()


def test_the_sandbox_imports_the_course_library_from_bytecode_compiled_once(tmp_path):
    """The stage is read-only in the sandbox: without .pyc files there, every submission would
    compile the library again."""
    from bptt_grader import stage as staging

    view = tmp_path / "view"
    view.mkdir()
    staging.build_stage(view, {"ex04": get_exercise("ex04")})
    site = staging.site_packages()
    command = sandbox.bwrap_command(sandbox.probe(), view, site, sandbox.Limits())
    head = command[: command.index("--") + 2]  # bubblewrap, then the interpreter
    paths = ["/grader"] + [f"/site/{i}" for i in range(len(site))]
    code = f"import sys; sys.path[:0] = {paths!r}; import bptt.rnn"
    run = subprocess.run(
        [*head, "-I", "-S", "-v", "-c", code], capture_output=True, text=True, check=True
    )
    tag = sys.implementation.cache_tag
    assert f"/grader/bptt/__pycache__/rnn.{tag}.pyc matches /grader/bptt/rnn.py" in run.stderr
