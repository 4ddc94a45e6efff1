"""``python -m bptt.grading grade SUBMISSIONS --out REPORT_DIR``: see :mod:`bptt.grading.cli`."""

import sys

from .cli import main

sys.exit(main())
