"""The course's batch grader: every submission in a bubblewrap sandbox, scores computed outside.

    bptt-grade grade SUBMISSIONS --out REPORT_DIR [--jobs N] [--seed S] [--no-sandbox] ...
    bptt-grade list

Pieces: :mod:`~bptt_grader.batch` (discovery, which notebook counts, scoring),
:mod:`~bptt_grader.sandbox` (bubblewrap, limits, the conversation with the child),
:mod:`~bptt_grader.stage` (what the sandbox sees), :mod:`~bptt_grader.child` (what runs inside),
:mod:`~bptt_grader.report` (grades.json, grades.csv, gradebook.csv), :mod:`~bptt_grader.cli`.
The exercises, their parts and the in-notebook self-check stay in :mod:`bptt.grading`.
"""
