"""``python -m bptt_grader grade SUBMISSIONS --out REPORT_DIR``: see :mod:`bptt_grader.cli`."""

import sys

from .cli import main

sys.exit(main())
