"""``python -m bptt.grading ...``: the batch grader moved to :mod:`bptt_grader` (``bptt-grade``)."""

import sys

from bptt_grader.cli import main

sys.exit(main())
