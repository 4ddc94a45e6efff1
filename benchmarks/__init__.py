"""Benchmarks of the course's code: ``python -m benchmarks [NAME ...] [--quick]``.

Each ``bench_<name>.py`` module exposes ``run(quick: bool = False) -> list[Table]``;
:mod:`benchmarks.harness` holds the shared timing, fitting and table-writing helpers.
"""
