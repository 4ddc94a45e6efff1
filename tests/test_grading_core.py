"""Unit and property tests of the grading framework: plain data, hints, parts, limits, stubs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bptt.grading import Exercise, Part, Verdict, WrongOutput, collect_part, plain, score_part
from bptt.grading.errors import PlainDataError, describe_exception, safe_str
from bptt.grading.hints import array_value, close, compare, deviation_ratio, scalar_value
from bptt.grading.limits import TimeLimitExceeded, time_limit
from bptt.grading.notebook import (
    NotebookError,
    code_cells,
    exercise_of,
    fresh_namespace,
    read_notebook,
    run_cells,
    strip_magics,
)
from bptt.grading.questions import (
    choice_digest,
    choice_question,
    number_question,
    prediction_question,
)
from bptt_grader.child import _imports as imported_modules
from bptt_grader.child import transform

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
from exercise_stubs import STUB, exercise_from_solution, strip_code, strip_markdown

FINITE = st.floats(-1e6, 1e6, allow_nan=False)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)


class AlwaysEqual:
    """An object that claims to equal everything: it must never pass a check."""

    def __eq__(self, other):
        return True

    __hash__ = object.__hash__


# ----------------------------------------------------------------------------- plain data


@given(hnp.arrays(np.float64, SHAPES, elements=st.floats(allow_nan=True, allow_infinity=True)))
def test_plain_round_trip_keeps_shape_and_values(array):
    encoded = json.loads(json.dumps(plain.to_plain(array, "x")))
    decoded = plain.from_plain(encoded, "x")
    assert decoded.shape == array.shape
    np.testing.assert_array_equal(decoded, array)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (AlwaysEqual(), "got an AlwaysEqual"),
        (np.array([1 + 2j]), "complex"),
        ([[1.0, 2.0], [3.0]], "expected numbers"),
        ("x" * (plain.MAX_TEXT + 1), "text answer"),
        (np.array(["a", "b"]), "expected numbers"),
        (np.zeros(plain.MAX_ELEMENTS + 1), "too large"),
    ],
)
def test_to_plain_rejects_what_is_not_numbers(value, message):
    with pytest.raises(PlainDataError, match=message):
        plain.to_plain(value, "dx")


def test_to_plain_accepts_tensors_and_bools():
    torch = pytest.importorskip("torch")
    t = torch.ones(2, 3, dtype=torch.float64, requires_grad=True) * 2
    assert plain.from_plain(plain.to_plain(t, "t"), "t").tolist() == [[2.0] * 3] * 2
    assert plain.from_plain(plain.to_plain(True, "flag"), "flag") == 1.0


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=True)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=15,
)
RECORDISH = st.fixed_dictionaries(
    {"status": st.sampled_from(plain.STATUSES)},
    optional={
        "values": JSON_VALUES | st.dictionaries(st.text(max_size=4), JSON_VALUES, max_size=3),
        "message": JSON_VALUES,
    },
)


@given(JSON_VALUES | RECORDISH)
def test_parse_record_raises_only_plain_data_errors(record):
    """Whatever an untrusted child writes, parsing either succeeds or says why, never crashes."""
    try:
        status, payload = plain.parse_record(record)
    except PlainDataError:
        return
    assert status in plain.STATUSES
    assert isinstance(payload, dict if status == plain.OK else str)


@pytest.mark.parametrize(
    "entry",
    [
        {"shape": [2], "data": [1.0]},
        {"shape": [-1], "data": []},
        {"shape": [1], "data": [True]},
        {"shape": [1], "data": ["1"]},
        {"shape": "2", "data": [1, 2]},
        {"text": 3},
        {"shape": [1], "data": [1], "extra": 0},
        [1, 2],
    ],
)
def test_from_plain_rejects_malformed_values(entry):
    with pytest.raises(PlainDataError):
        plain.from_plain(entry, "v")


# ----------------------------------------------------------------------------- hints


@given(
    hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), elements=FINITE)
)
def test_compare_accepts_the_expected_value_itself(expected):
    assert compare("g", expected.copy(), expected) is None


@given(
    hnp.arrays(
        np.float64, st.tuples(st.integers(2, 5), st.integers(2, 5)), elements=st.floats(1, 10)
    )
)
def test_compare_names_a_transposed_matrix(expected):
    expected = expected + np.triu(np.ones_like(expected)) * 20  # not symmetric
    hint = compare("dW", expected.T.copy(), expected)
    assert "transposed" in hint


def test_the_tolerance_bounds_the_deviation_ratio_not_the_relative_error():
    expected = np.array([10.0, 1.0])
    got = expected + np.array([0.0, 1e-6 * 10])  # 1e-6 of the largest entry, 1e-5 of its own
    assert deviation_ratio(got, expected) == pytest.approx(1e-6)
    assert close(got, expected, rtol=1.01e-6) and not close(got, expected, rtol=0.99e-6)
    assert deviation_ratio(expected[:1], expected) == float("inf")


def test_compare_hints():
    expected = np.arange(1.0, 7.0).reshape(2, 3)
    assert compare("g", expected * 5, expected, scales=[(5, "missing 1/T")]) == "g: missing 1/T"
    assert compare("g", -expected, expected) == "g: wrong sign"
    assert (
        compare("g", expected + 1, expected, variants=[(expected + 1, "off by one")])
        == "g: off by one"
    )
    assert "NaN" in compare("g", expected * np.nan, expected)
    assert compare("g", expected[:1], expected) == "g: shape (1, 3), expected (2, 3)"
    # the hint reports the course's one relative error (1.5 e vs e: 0.5 / 1.5)
    assert "relative error 0.33)" in compare("g", expected * 1.5, expected)
    assert "text" in compare("g", "oops", expected)
    assert compare("g", expected * (1 + 1e-9), expected) is None
    assert compare("g", expected * (1 + 1e-3), expected) is not None


def test_close_and_scalar_value():
    assert close(np.zeros(3), np.zeros(3))
    assert not close(np.ones(2), np.ones(3))
    assert scalar_value({"q": np.array([2.5])}, "q", "q") == 2.5
    for bad in ({"q": np.ones(2)}, {"q": np.array(np.nan)}, {"q": "x"}, {}):
        with pytest.raises(WrongOutput):
            scalar_value(bad, "q", "q")


def test_verdict_merges_hints_with_the_same_reason():
    verdict = Verdict.from_hints(
        [None, "a: why", "b: why", "a: why", "c: other", "plain"], "with T = 1"
    )
    assert verdict.fraction == 0
    assert verdict.reason == "with T = 1, a and b: why; c: other; plain"
    assert Verdict.from_hints([None, None]) == Verdict.correct()
    cases = iter([("first", [None]), ("second", ["x: y"]), ("third", ["never: computed"])])
    assert Verdict.from_cases(cases).reason == "second, x: y"
    assert next(cases)[0] == "third", "cases after the first failing one are not computed"


# ----------------------------------------------------------------------------- parts


def _double_part(**overrides) -> Part:
    """A part that asks for f(x) = 2 x on three numbers."""

    def make_inputs(seed):
        return np.random.default_rng(seed).normal(size=3)

    def collect(functions, x):
        return {"f(x)": functions["f"](x)}

    def score(x, values):
        return Verdict.from_hints(
            [
                compare(
                    "f(x)", array_value(values, "f(x)"), 2 * x, scales=[(0.5, "halve, not double")]
                )
            ]
        )

    return Part("double", 2, ("f",), make_inputs, collect, score, **overrides)


def _grade(part, functions, seed=3):
    record = json.loads(json.dumps(collect_part(part, functions, seed)))
    return score_part(part, record, seed, "ex99")


def test_collect_and_score_a_part():
    part = _double_part()
    assert _grade(part, {"f": lambda x: 2 * x}).points == 2
    result = _grade(part, {"f": lambda x: x})
    assert (result.points, result.reason) == (0, "f(x): halve, not double")


def _hangs(x):
    while True:
        pass


def _raises_a_bad_error(x):
    class Nasty(Exception):
        def __str__(self):
            raise RuntimeError("no message for you")

    raise Nasty


@pytest.mark.parametrize(
    ("functions", "reason"),
    [
        ({}, "f is not defined in the notebook"),
        ({"f": 3}, "f is an int, expected a function"),
        ({"f": lambda x: (_ for _ in ()).throw(NotImplementedError)}, "not implemented yet"),
        ({"f": lambda x: 1 / 0}, "ZeroDivisionError: division by zero"),
        ({"f": lambda x: AlwaysEqual()}, "got an AlwaysEqual"),
        ({"f": lambda x: "2x"}, "should be numbers"),
        ({"f": lambda x: [np.nan] * 3}, "contains NaN"),
        ({"f": lambda x: np.zeros(4)}, "f(x): shape (4,), expected (3,)"),
        ({"f": _raises_a_bad_error}, "Nasty: <unprintable>"),
    ],
)
def test_a_part_never_crashes_on_learner_errors(functions, reason):
    result = _grade(_double_part(), functions)
    assert result.points == 0
    assert reason in result.reason


def test_a_part_stops_an_endless_loop_and_sys_exit():
    start = time.monotonic()
    result = _grade(_double_part(time_limit=0.5), {"f": _hangs})
    assert result.points == 0 and "did not finish within 0.5 s" in result.reason
    assert time.monotonic() - start < 5
    result = _grade(_double_part(), {"f": lambda x: sys.exit(3)})
    assert result.points == 0 and "sys.exit(3)" in result.reason


def test_learner_mutating_inputs_changes_nothing():
    def doubles_in_place(x):
        x *= 2
        return x

    assert _grade(_double_part(), {"f": doubles_in_place}).points == 2


@pytest.mark.parametrize(
    "record",
    [
        None,
        {"status": "ok"},
        {"status": "weird"},
        {"status": "ok", "values": {"f(x)": {"shape": [3], "data": [1]}}},
    ],
)
def test_score_part_rejects_malformed_records(record):
    result = score_part(_double_part(), record, 3, "ex99")
    assert result.points == 0 and "unreadable" in result.reason


def test_score_part_reports_a_missing_value_and_error_hints():
    part = _double_part(error_hints=(("division", "divide by something else"),))
    assert (
        "no value for 'f(x)'" in score_part(part, {"status": "ok", "values": {}}, 3, "ex99").reason
    )
    reason = _grade(part, {"f": lambda x: 1 / 0}).reason
    assert reason.endswith("hint: divide by something else")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"name": "not valid"}, ValueError),
        ({"points": 0}, ValueError),
        ({"needs": ()}, ValueError),
        ({"needs": "f"}, ValueError),
        ({"collect": 3}, TypeError),
        ({"time_limit": 0}, ValueError),
    ],
)
def test_part_validates_its_fields(kwargs, error):
    fields = {
        "name": "p",
        "points": 1,
        "needs": ("f",),
        "make_inputs": lambda s: None,
        "collect": lambda f, i: {},
        "score": lambda i, v: Verdict.correct(),
        **kwargs,
    }
    with pytest.raises(error):
        Part(**fields)


def test_exercise_validates_id_and_unique_parts():
    part = _double_part()
    with pytest.raises(ValueError, match="id"):
        Exercise("exercise1", "t", (part,))
    with pytest.raises(ValueError, match="not unique"):
        Exercise("ex99", "t", (part, part))
    with pytest.raises(TypeError, match="tuple of Part"):
        Exercise("ex99", "t", [part])
    assert Exercise("ex99", "t", (part,)).max_points == 2


def test_exercise_kinds_are_from_the_course_list():
    part = Part("p", 2, ("f",), lambda s: None, lambda f, i: {}, lambda i, v: Verdict.correct())
    assert Exercise("ex99", "t", (part,)).kinds == ("implement",)
    assert Exercise("ex99", "t", (part,), kinds=("find-the-bug", "measure")).kinds[0] == "find-the-bug"
    for bad in ((), ("debug",), ("derive", "derive"), ["derive"]):
        with pytest.raises(ValueError, match="kinds: expected"):
            Exercise("ex99", "t", (part,), kinds=bad)


# ----------------------------------------------------------------------------- questions


def test_number_and_choice_questions():
    q1 = number_question("q1", lambda: 0.25, rtol=1e-2)
    assert _grade(q1, {"answers": lambda: {"q1": 0.2501}}).points == 1
    assert "not right" in _grade(q1, {"answers": lambda: {"q1": 0.3}}).reason
    assert _grade(q1, {"answers": lambda: {"q2": 1}}).reason == "q1 is not answered yet"
    assert "should return a dict" in _grade(q1, {"answers": lambda: [0.25]}).reason
    q2 = choice_question("ex99", "q2", "abc", digest=choice_digest("ex99", "q2", "c"))
    assert _grade(q2, {"answers": lambda: {"q2": "(C)"}}).points == 1
    assert "not the right choice" in _grade(q2, {"answers": lambda: {"q2": "a"}}).reason
    assert "one of the letters" in _grade(q2, {"answers": lambda: {"q2": "ab"}}).reason
    q3 = choice_question("ex99", "q3", "ab", compute=lambda: "a")
    assert _grade(q3, {"answers": lambda: {"q3": "a"}}).points == 1
    with pytest.raises(ValueError, match="exactly one"):
        choice_question("ex99", "q4", "ab")


def test_prediction_question_scores_by_how_many_times_off():
    q = prediction_question("p1", lambda: 0.02, factor=1.5)
    assert _grade(q, {"answers": lambda: {"p1": 0.028}}).points == 1
    assert _grade(q, {"answers": lambda: {"p1": 0.014}}).points == 1
    half = _grade(q, {"answers": lambda: {"p1": 0.04}})
    assert (half.points, half.reason) == (0.5, "p1: within 2.25 times, but too high")
    wrong = _grade(q, {"answers": lambda: {"p1": 0.001}})
    assert (wrong.points, wrong.reason) == (0, "p1: too low by more than 2.25 times")
    assert "positive" in _grade(q, {"answers": lambda: {"p1": -1.0}}).reason
    with pytest.raises(ValueError, match="factor"):
        prediction_question("p1", lambda: 1.0, factor=1.0)


# ----------------------------------------------------------------------------- limits and errors


def test_time_limit_interrupts_and_nests():
    with pytest.raises(TimeLimitExceeded), time_limit(0.2):
        _hangs(None)
    start = time.monotonic()
    with pytest.raises(TimeLimitExceeded), time_limit(0.6):
        with time_limit(5.0):  # capped by the outer limit
            pass
        _hangs(None)
    assert time.monotonic() - start < 3
    with time_limit(None):
        pass
    with pytest.raises(ValueError, match="seconds"), time_limit(-1):
        pass


def test_describe_exception_is_safe():
    assert describe_exception(SystemExit(2)) == "the code called sys.exit(2)"
    assert describe_exception(MemoryError()) == "MemoryError: ran out of memory"
    assert describe_exception(ValueError("x" * 1000)).endswith("...")
    assert safe_str(AlwaysEqual()).startswith("<")


# ----------------------------------------------------------------------------- notebooks


def _notebook(*sources, metadata=None, tags=None):
    cells = [
        {
            "cell_type": "code",
            "source": s,
            "metadata": {"tags": (tags or {}).get(i, [])},
            "outputs": [],
        }
        for i, s in enumerate(sources)
    ]
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": metadata or {}, "cells": cells}


def test_read_notebook_explains_what_is_wrong(tmp_path):
    cases = {
        "a.txt": (b"{}", "expected a .ipynb"),
        "b.ipynb": (b"{not json", "invalid JSON"),
        "c.ipynb": (b"\xff\xfe", "not UTF-8"),
        "d.ipynb": (b"[]", "no list of cells"),
        "e.ipynb": (json.dumps({"cells": [], "nbformat": 3}).encode(), "unsupported"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(NotebookError, match=message):
            read_notebook(tmp_path / name)


def test_exercise_id_from_metadata_then_file_name():
    assert (
        exercise_of(_notebook(metadata={"bptt": {"exercise": "ex07"}}), "anything.ipynb") == "ex07"
    )
    assert (
        exercise_of(_notebook(metadata={"bptt": {"exercise": "bad"}}), "my_ex03_copy.ipynb")
        == "ex03"
    )
    assert exercise_of(_notebook(), "homework.ipynb") is None


def test_code_cells_skip_bootstrap_and_check_cells():
    nb = _notebook("a = 1", "check()", ["b ", "= 2"], tags={1: ["check"]})
    cells = code_cells(nb)
    assert [(c.number, c.source) for c in cells] == [(1, "a = 1"), (3, "b = 2")]


def test_strip_magics():
    source = "%matplotlib inline\nif True:\n    !pip install x\n    y = 1\n"
    namespace = {}
    exec(strip_magics(source), namespace)  # noqa: S102 - the stripped source must run
    assert namespace["y"] == 1
    assert strip_magics("%%bash\nls -l\n") == ""
    assert strip_magics("%%time\nz = 2\n") == "z = 2\n"


def test_run_cells_records_failures_and_goes_on():
    cells = code_cells(
        _notebook(
            "a = 1",
            "def f(:",
            "raise KeyError('k')",
            "while True:\n    pass",
            "import sys\nsys.exit(4)",
            "b = a + 1",
        )
    )
    namespace = fresh_namespace()
    errors = run_cells(cells, namespace, cell_time_limit=0.5)
    assert namespace["b"] == 2
    assert len(errors) == 4
    assert "code cell 2 (def f(:): SyntaxError" in errors[0]
    assert "KeyError: 'k'" in errors[1]
    assert "stopped after 0.5 s" in errors[2]
    assert "sys.exit(4)" in errors[3]


# ----------------------------------------------------------------------------- stubs


INDENTS = st.sampled_from(["    ", "        ", "\t"])
BODY = st.lists(st.text("abcxyz =+1()", min_size=1, max_size=12), min_size=1, max_size=4)


@given(INDENTS, BODY, BODY)
def test_strip_code_replaces_the_region_at_its_indentation(indent, before, body):
    lines = ["def f():", *(indent + b for b in before), indent + "# BEGIN SOLUTION"]
    lines += [indent + "solution_" + b for b in body] + [indent + "# END SOLUTION", "tail = 1"]
    stripped = strip_code("\n".join(lines)).split("\n")
    assert stripped == [
        "def f():",
        *(indent + b for b in before),
        *(indent + s for s in STUB),
        "tail = 1",
    ]
    assert strip_code("\n".join(stripped)) == "\n".join(stripped), "idempotent"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("# BEGIN SOLUTION\nx = 1\n# END SOLUTION", "not inside a function"),
        ("def f():\n    # BEGIN SOLUTION\n    x = 1", "never closed"),
        ("def f():\n    # END SOLUTION", "without"),
        (
            "def f():\n    # BEGIN SOLUTION\n    # BEGIN SOLUTION\n    # END SOLUTION",
            "inside another",
        ),
    ],
)
def test_strip_code_refuses_bad_markers(source, message):
    with pytest.raises(ValueError, match=message):
        strip_code(source)


def test_strip_markdown_and_exercise_from_solution():
    text = "# Solution 3: Powers\n\nIntro.\n<!-- BEGIN SOLUTION -->\nThe answer.\n<!-- END SOLUTION -->"
    assert strip_markdown(text) == "# Exercise 3: Powers\n\nIntro."
    assert strip_markdown("No markers\n") == "No markers\n"
    solution = {
        "nbformat": 4,
        "metadata": {"bptt": {"exercise": "ex07"}},
        "cells": [
            {
                "cell_type": "markdown",
                "metadata": {},
                "source": "<!-- BEGIN SOLUTION -->\nonly\n<!-- END SOLUTION -->",
            },
            {
                "cell_type": "code",
                "metadata": {"tags": ["x", "hide-input"]},
                "execution_count": 3,
                "outputs": [{"output_type": "stream"}],
                "source": [
                    "def f():\n",
                    "    # BEGIN SOLUTION\n",
                    "    return 1\n",
                    "    # END SOLUTION",
                ],
            },
        ],
    }
    exercise = exercise_from_solution(solution)
    assert len(exercise["cells"]) == 1, "a markdown cell left empty is dropped"
    cell = exercise["cells"][0]
    assert cell["source"] == "def f():\n    # YOUR CODE HERE\n    raise NotImplementedError"
    assert (cell["outputs"], cell["execution_count"], cell["metadata"]) == (
        [],
        None,
        {"tags": ["x"]},
    ), "a stub cell is not folded (its solution was)"
    assert exercise["metadata"] == solution["metadata"]
    assert len(solution["cells"]) == 2 and solution["cells"][1]["outputs"], (
        "the solution is not modified"
    )


def test_a_planted_cell_becomes_the_learners_buggy_code():
    fixed = "def f(x):\n    return x + 1"
    planted = "def f(x):\n    return x - 1"
    solution = {
        "nbformat": 4,
        "metadata": {},
        "cells": [
            {
                "cell_type": "code",
                "metadata": {"tags": ["hide-input"], "bptt": {"planted": planted}},
                "execution_count": 1,
                "outputs": [],
                "source": fixed,
            }
        ],
    }
    (cell,) = exercise_from_solution(solution)["cells"]
    assert (cell["source"], cell["metadata"]) == (planted, {}), "the answer is not in the exercise"
    assert solution["cells"][0]["source"] == fixed
    solution["cells"][0]["source"] = "def f(x):\n    # BEGIN SOLUTION\n    return x\n    # END SOLUTION"
    with pytest.raises(ValueError, match="no solution markers"):
        exercise_from_solution(solution)
    solution["cells"][0]["metadata"]["bptt"]["planted"] = ""
    with pytest.raises(ValueError, match="planted"):
        exercise_from_solution(solution)


def test_heavy_imports_are_found_for_preimport():
    cells = [
        {"source": s}
        for s in ("import numpy as np\nimport torch.nn", "from matplotlib import pyplot", "def f(:", "from . import x", "import os")
    ]
    assert imported_modules(cells) == ["numpy", "torch.nn", "matplotlib"]


def test_cells_are_transformed_as_ipython_does():
    """Black-formatted continuation lines that start with != or % stay Python; magics become
    calls of get_ipython()."""
    source = "ok = (\n    1\n    != 2\n)\nrest = (\n    7\n    % 4\n)\n%matplotlib inline\n!pip install x\n"
    namespace = {"get_ipython": lambda: type("S", (), {"run_line_magic": lambda *a: None, "system": lambda *a: None})()}
    exec(transform(source), namespace)  # noqa: S102
    assert namespace["ok"] is True and namespace["rest"] == 3


def _limited(cwd, code: str, memory_mb: int = 1024, cpu_s: int = 10, file_mb: int = 1):
    setup = (
        "from bptt_grader.child import apply_limits\n"
        f"apply_limits({{'memory_mb': {memory_mb}, 'cpu_s': {cpu_s}, 'file_mb': {file_mb}, 'pids': 4096}})\n"
    )
    command = [sys.executable, "-c", setup + code]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.skipif(not hasattr(signal, "SIGXCPU"), reason="POSIX resource limits")
def test_resource_limits_of_the_child(tmp_path):
    assert _limited(tmp_path, "while True:\n    pass", cpu_s=1).returncode == -signal.SIGXCPU
    memory = _limited(tmp_path, "data = bytearray(600 * 2**20)", memory_mb=256)
    assert "MemoryError" in memory.stderr
    big_file = _limited(tmp_path, "open('big.bin', 'wb').write(b'0' * 2 * 2**20)", file_mb=1)
    assert "File too large" in big_file.stderr


def test_the_sandbox_sees_no_score_code_and_no_digests(tmp_path):
    """The stage holds each exercise pruned to its COLLECT functions: no SCORE functions, no
    reference computations, no multiple-choice digests, no exercise definitions."""
    from bptt.grading.registry import exercise_ids, get_exercise
    from bptt_grader.stage import build_stage

    exercises = {e: get_exercise(e, private_checks=None) for e in exercise_ids()}
    stage = build_stage(tmp_path, exercises)
    pruned = sorted((stage / "bptt" / "grading" / "exercises").glob("ex*.py"))
    assert len(pruned) == len(exercises)
    for path in pruned:
        text = path.read_text()
        assert "def _collect" in text, path.name
        for secret in ("digest", "def _score", "EXERCISE", "autograd"):
            assert secret not in text, (path.name, secret)
    assert not (stage / "bptt" / "grading" / "registry.py").exists()
    assert not list(stage.rglob("*.ipynb"))
