"""Graded exercises: in-notebook self-checks and a sandboxed batch grader.

For learners, in an exercise notebook::

    from bptt.grading import check
    check("ex04", step_backward=step_backward)   # prints points and a hint per part

For instructors, over a folder of submitted notebooks (flat, or one folder per student)::

    bptt-grade grade SUBMISSIONS --out REPORT_DIR    # or: python -m bptt_grader grade ...

writes ``grades.csv``, ``grades.json`` and ``gradebook.csv``. The batch grader is its own package,
:mod:`bptt_grader`: each notebook runs in a bubblewrap sandbox that sees only an answer-free,
pruned copy of this package (:mod:`bptt_grader.stage`); inputs are made and scores computed in
the grader's process. Extra, private parts come from the file named by ``BPTT_PRIVATE_CHECKS``
(:mod:`bptt.grading.registry`).

How a check works: every graded *part* (:class:`Part`) first COLLECTs (runs the learner's
functions on inputs it chooses, reduces the results to plain numbers) and then SCOREs (computes
the expected values independently, with torch autograd, finite differences or an invariant, and
compares them, :mod:`bptt.grading.hints`). A check never prints the expected values.

Adding an exercise ``exNN`` (ex08, ex09, ex10 and ex13 follow this recipe):

1. Number the exercise like its chapter: ``exNN`` belongs to ``chapters/NN_topic.ipynb``, whose
   last markdown cell links ``{doc}`../exercises/exNN_topic```; the exercise links back (a test
   checks both). Write ``solutions/exNN_topic.ipynb`` (the source of truth). Put its id in the notebook
   metadata: ``metadata["bptt"] = {"exercise": "exNN"}``. Title the first markdown cell
   ``# Solution N: ...``. Every piece of learner code lives inside a function, between the lines
   ``# BEGIN SOLUTION`` and ``# END SOLUTION``; solution-only prose sits between
   ``<!-- BEGIN SOLUTION -->`` and ``<!-- END SOLUTION -->``, inside a ``:::{dropdown}`` fence,
   and solution code cells carry the tag ``hide-input``, so the book folds both until the reader
   opens them (tests/test_grading_notebooks.py checks). End with ``def answers():`` returning
   ``{"q1": ..., ...}``. Check cells (tag them ``check``) call ``check("exNN", name=name)``; the
   batch grader skips them.
   *Find the bug*: the learner gets working-looking code with one planted bug instead of a
   stub. The solution cell holds the fixed code (tag ``hide-input``, no markers) and the planted
   version in its metadata, ``cell.metadata["bptt"] = {"planted": "<the cell's buggy source>"}``
   (``tools/exercise_stubs.py``). *Predict, then run*: a markdown cell asks for the prediction,
   ``answers()`` records it in a cell *before* the experiment cell, and the part comes from
   :func:`questions.prediction_question`.
2. Write ``bptt/grading/exercises/exNN_topic.py`` defining ``EXERCISE = Exercise("exNN", title,
   parts, kinds=(...))``, its kinds drawn from :data:`parts.KINDS` (implement, derive,
   find-the-bug, predict-then-run, measure). Each :class:`Part` names the learner functions it ``needs``, builds its inputs from
   a seed (``make_inputs``), calls the functions (``collect``: return ``{name: array or str}``;
   raise :class:`WrongOutput` with a clear message for unusable results) and scores
   (``score``: compute the expected values independently, use :func:`hints.compare` for
   specific hints, return a :class:`Verdict`; a function returning a dict of arrays, checked
   against autograd with hints for typical wrong answers, gets its ``score`` from
   :func:`hints.array_dict_score`). ``collect`` must be a top-level function of the
   module: the sandbox keeps only it and what it references; name anything else unpickling the
   inputs needs in ``SANDBOX_NAMES``. List the library functions a part asks the learner to write
   with ``EXERCISE.forbidding({part: (dotted names,)})``: tripwires in the batch grader. Questions come from
   :func:`questions.number_question`, :func:`questions.prediction_question` and
   :func:`questions.choice_question`. Import torch inside
   functions, not at module level, so numpy-only exercises stay light. The registry finds the
   module by its name; nothing else needs registering.
3. Run ``python tools/make_exercises.py exNN`` to generate and execute
   ``exercises/exNN_topic.ipynb``, then execute the solution with ``tools/nbtool.py execute``.
4. Tests, in a test file of the exercise's own: the solution scores full marks and the stubs
   score zero (load a notebook's functions in-process with
   :func:`bptt.grading.notebook.notebook_namespace`, score them with :func:`run_checks`), and at
   least two typical wrong answers per part lose that part's points, each with its hint;
   ``tests/test_grading_exercises.py`` shows the pattern for ex03, ex04, ex07 and ex11.
   ``tests/test_grading_notebooks.py`` already checks every registered exercise's notebooks:
   both exist, the exercise is generated from the solution, the metadata names the exercise.
"""

from __future__ import annotations

from .errors import NotAnswered, WrongOutput
from .parts import Exercise, Part, PartResult, Verdict, collect_part, score_part
from .registry import exercise_ids, get_exercise
from .selfcheck import check, run_checks

__all__ = [
    "Exercise",
    "NotAnswered",
    "Part",
    "PartResult",
    "Verdict",
    "WrongOutput",
    "check",
    "collect_part",
    "exercise_ids",
    "get_exercise",
    "run_checks",
    "score_part",
]
