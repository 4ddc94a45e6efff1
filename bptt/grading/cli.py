"""The batch grader moved to :mod:`bptt_grader`; this name stays for installed ``bptt-grade`` scripts."""

from bptt_grader.cli import main

__all__ = ["main"]
