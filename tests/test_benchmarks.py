"""The benchmark kit (benchmarks/harness.py) and a quick run of every benchmark.

No test here asserts a time: the benchmarks measure, the tests check that the measuring is
right (medians, fitted exponents, tables on disk) and that every benchmark still runs.
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
from course import ROOT

sys.path.insert(0, str(ROOT))

from benchmarks import __main__ as bench_main
from benchmarks import harness


def test_time_call_is_the_median_of_the_repeats():
    durations = iter([5, 1, 3])
    now = {"t": 0.0}

    def clock():
        return now["t"]

    def fn():
        now["t"] += next(durations, 0)

    # one warm-up run eats the 5, the three timed runs last 1, 3 and 0
    assert harness.time_call(fn, repeats=3, warmup=1, clock=clock) == 1


def test_time_interleaved_takes_turns_and_checks_its_arguments():
    order = []
    harness.time_interleaved(
        {"a": lambda: order.append("a"), "b": lambda: order.append("b")}, repeats=2, warmup=0
    )
    assert order == ["a", "b", "a", "b"]
    with pytest.raises(ValueError, match="repeats"):
        harness.time_interleaved({"a": lambda: None}, repeats=0)
    with pytest.raises(ValueError, match="warmup"):
        harness.time_interleaved({"a": lambda: None}, warmup=-1)
    with pytest.raises(TypeError, match="callable"):
        harness.time_call(3)


@pytest.mark.parametrize("exponent", [0.5, 1.0, 2.0, 4.0])
def test_loglog_slope_recovers_a_power_law(exponent):
    xs = np.array([8, 16, 32, 64, 128])
    assert harness.loglog_slope(xs, 3.0 * xs**exponent) == pytest.approx(exponent)


def test_loglog_slope_refuses_what_it_cannot_fit():
    with pytest.raises(ValueError, match="values > 0"):
        harness.loglog_slope([1, 2], [0, 1])
    with pytest.raises(ValueError, match="N = 3"):
        harness.loglog_slope([1, 2, 3], [1, 2])


def test_table_rows_must_match_the_columns():
    with pytest.raises(ValueError, match="row 0 .* 1 cells, expected 2"):
        harness.Table("t", "T", ["a", "b"], [[1]])


def test_write_table_writes_json_and_markdown_with_the_machine(tmp_path):
    table = harness.Table("demo", "A demo", ["n", "ms"], [[1, 0.5], [2, float("nan")]], "a note")
    json_path, md_path = harness.write_table(table, tmp_path)
    record = json.loads(json_path.read_text())
    assert record["columns"] == ["n", "ms"] and record["rows"][1] == [2, "nan"]
    for key in ("cpu", "cores", "python", "numpy", "torch", "torch_threads", "device", "date"):
        assert key in record["machine"], key
    markdown = md_path.read_text()
    assert markdown.startswith("### A demo\n") and "| 1 | 0.5 |" in markdown
    assert "a note" in markdown and "Machine:" in markdown


def test_threads_limits_and_restores_the_blas_threads():
    before = harness.blas_threads()
    with harness.threads(1):
        assert harness.blas_threads() in (1, None)
    assert harness.blas_threads() == before


def test_machine_info_records_the_blas_kernel():
    info = harness.machine_info()
    assert "blas" in info and "OPENBLAS_CORETYPE" in info["thread_env"]
    for library in info["blas"]:
        assert {"internal_api", "architecture", "num_threads"} <= set(library)
    assert "threads" in harness.machine_line(info)


def test_threads_restores_the_counts():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    with harness.threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_paired_rounds_rotates_the_order_and_pairs_the_ratios():
    now = {"t": 0.0}
    cost = {"a": 1.0, "b": 3.0, "c": 2.0}

    def make(name):
        def fn():
            now["t"] += cost[name]
        return fn

    paired = harness.paired_rounds({n: make(n) for n in cost}, reference="a", rounds=3,
                                   warmup=1, clock=lambda: now["t"])
    # every round runs every contender once, starting from a different one each round
    assert paired.order == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert paired.ratio("b") == 3.0 and paired.spread("c") == (2.0, 2.0)
    assert paired.seconds == cost and paired.ratio_text("a") == "1 [1, 1]"
    fair = paired.fairness()
    assert fair["interleaved"] and fair["rounds"] == 3 and fair["same_threads"]
    with pytest.raises(ValueError, match="reference"):
        harness.paired_rounds({"a": lambda: None}, reference="z")
    with pytest.raises(ValueError, match="rounds"):
        harness.paired_rounds({"a": lambda: None}, reference="a", rounds=0)


def test_paired_rounds_records_the_threads_each_side_ran_with():
    torch = pytest.importorskip("torch")
    with harness.threads(1):
        paired = harness.paired_rounds({"numpy": lambda: None, "torch": lambda: None},
                                       reference="numpy", rounds=1, warmup=0)
    assert paired.fairness()["same_threads"]
    assert paired.threads["torch"]["torch"] == 1
    assert paired.threads["numpy"]["blas"] in (1, None)
    # a side that changes the thread count behind the harness's back is caught
    old = torch.get_num_threads()

    def sneaky():
        torch.set_num_threads(2)

    try:
        with harness.threads(1):
            unfair = harness.paired_rounds({"a": sneaky, "b": lambda: None}, reference="a",
                                           rounds=1, warmup=1)
    finally:
        torch.set_num_threads(old)
    assert not unfair.fairness()["same_threads"]


def test_quartiles_and_heap_in_use():
    assert harness.quartiles([1.0, 2.0, 3.0, 4.0, 5.0]) == (2.0, 4.0)
    assert harness.quartiles([7.0]) == (7.0, 7.0)
    torch = pytest.importorskip("torch")
    before = harness.heap_in_use()
    if before is None:
        pytest.skip("no glibc mallinfo2 here")
    block = torch.empty(4_000_000, dtype=torch.uint8)
    grown = harness.heap_in_use() - before
    assert 4_000_000 <= grown < 4_200_000
    del block


def test_gemm_rate_is_a_positive_rate():
    assert harness.gemm_rate(np.float32, n=64, repeats=1) > 0


def test_meta_is_written_and_rendered(tmp_path):
    paired = harness.paired_rounds({"a": lambda: None}, reference="a", rounds=2, warmup=0)
    meta = harness.measurement_meta(fairness=paired.fairness(), gemm_gflops={"f32": 10.0},
                                    load_before=[0.1, 0.2, 0.3])
    table = harness.Table("m", "M", ["n"], [[1]], meta=meta)
    json_path, md_path = harness.write_table(table, tmp_path)
    record = json.loads(json_path.read_text())
    assert record["meta"]["fairness"]["interleaved"] is True
    assert "OPENBLAS_CORETYPE" in record["meta"] and "load_average" in record["meta"]
    text = md_path.read_text()
    assert "rotating turns" in text and "GEMM" in text and "load average before" in text


def test_the_rtrl_fit_region_is_where_time_follows_the_count():
    from benchmarks.bench_rtrl import law_region

    sizes = [8, 16, 32, 64, 128]
    counts = [n**2 for n in sizes]
    seconds = [1e-6 + 1e-9 * c for c in counts]  # a fixed cost, then the arithmetic
    region = law_region(sizes, seconds, counts)
    assert [sizes[i] for i in region] == [32, 64, 128]
    assert law_region(sizes, [1e-9 * c for c in counts], counts) == list(range(5))


def test_every_benchmark_module_is_found():
    assert {"numpy_bptt", "linear", "rtrl", "torch_memory", "torch_lstm", "tbptt_overhead",
            "capstone", "notebooks"} <= set(bench_main.available())


def test_an_unknown_benchmark_is_refused(capsys):
    with pytest.raises(SystemExit):
        bench_main.main(["no_such_benchmark"])
    assert "unknown benchmark" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", [n for n in bench_main.available() if n != "notebooks"]  # nbval runs every notebook
)
def test_benchmark_runs_quickly_and_writes_its_tables(name, tmp_path, capsys):
    assert bench_main.main([name, "--quick", "--results-dir", str(tmp_path)]) == 0
    tables = sorted(tmp_path.glob("*.json"))
    assert tables, f"bench_{name} wrote no table"
    for path in tables:
        record = json.loads(path.read_text())
        assert record["rows"], f"{path.name} has no rows"
        numbers = [c for row in record["rows"] for c in row if isinstance(c, float)]
        assert all(math.isfinite(c) for c in numbers), path.name
        assert (tmp_path / f"{path.stem}.md").exists()
        meta = record["meta"]
        assert "load_average" in meta and "blas" in meta, f"{path.name} records no machine state"
        fairness = meta.get("fairness")
        if fairness is not None:  # a comparison: both sides alike, interleaved
            assert fairness["interleaved"] and fairness["same_threads"], path.name
    assert "###" in capsys.readouterr().out
