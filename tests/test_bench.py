"""The benchmarks run (their numbers are read by people, never asserted: these machines are noisy).

Each runs here at a tiny size, as a subprocess like a user runs it, and must write a result whose
correctness checks (none lost, every refusal with Retry-After) hold; speed is never asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def run_benchmark(name: str, *args: str, written_as: str | None = None) -> dict[str, Any]:
    pattern = f"{written_as or name}-*.json"
    before = set((ROOT / "bench" / "results").glob(pattern))
    result = subprocess.run(
        [sys.executable, "-m", "bench", name, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [written] = set((ROOT / "bench" / "results").glob(pattern)) - before
    report: dict[str, Any] = json.loads(written.read_text())
    written.unlink()
    return report


def test_transcode_benchmark_runs_both_variants_and_writes_its_result() -> None:
    report = run_benchmark("transcode", "--repeats", "1", "--seconds", "2")
    assert set(report["variants"]) == {"direct ffmpeg", "workflow"}
    assert report["ratio"] > 0


def test_overhead_benchmark_compares_plain_temporalio_with_the_event_api() -> None:
    report = run_benchmark("overhead", "--runs", "20", "--in-flight", "10", "--repeats", "1")
    assert set(report["variants"]) == {"hand-written temporalio", "longhaul event API"}
    for row in report["variants"].values():
        assert row["per_s"] > 0
        assert row["cpu_s"]["temporal server"] > 0
    assert report["variants"]["longhaul event API"]["cpu_s"]["worker"] > 0  # the longhaul worker did the work


def test_throughput_benchmark_runs_longhaul_serve_beside_plain_and_local_eager_temporalio() -> None:
    args = ("--runs", "20", "--in-flight", "10", "--repeats", "1", "--sequential", "5")
    report = run_benchmark("throughput", *args)
    variants = report["variants"]
    assert len(variants) == 3 and all(row["per_s"] > 0 for row in variants.values())
    [longhaul] = [name for name in variants if name.startswith("longhaul serve")]
    assert variants[longhaul]["cpu_s"]["serve"] > 0  # the one process did the work
    assert set(report["latency"]) == set(variants)
    assert report["ratio_to_plain"] > 0 and report["ratio_to_local_eager"] > 0


def test_limit_benchmark_runs_each_pipeline_beside_its_steps_written_by_hand() -> None:
    report = run_benchmark("limit", "--runs", "10", "--in-flight", "5", "--repeats", "1")
    assert set(report["variants"]) == {"hello by hand", "hello pipeline", "order by hand", "order pipeline"}
    assert report["hello ratio"] > 0 and report["order ratio"] > 0
    cpu = report["variants"]
    assert cpu["order by hand"]["cpu_s"]["plain-payments"] > 0  # its charges went to its own provider
    assert cpu["order pipeline"]["cpu_s"]["payments"] > 0


def test_queue_benchmark_measures_accept_drain_burst_and_idle_latency_and_loses_nothing() -> None:
    report = run_benchmark(
        "queue", "--events", "200", "--drain", "300", "--burst", "600", "--idle", "10", "--repeats", "1"
    )
    assert set(report["variants"]) == {"raw start_workflow", "accept single (wrk)", "accept batches of 500"}
    assert report["variants"]["accept single (wrk)"]["cpu_s"]["wrk"] > 0
    half = report["accept_half_load"]  # paced at half the saturated rate
    assert half["achieved_per_s"] > 0 and half["p99_ms"] >= half["p50_ms"] > 0
    assert report["drain"]["runs"] == 300 and report["drain"]["dispatcher_starts_per_s"] > 0
    burst = report["burst"]
    assert set(burst["statuses"]) == {"202"} and burst["statuses"]["202"] >= 600
    assert burst["runs_recorded"] == burst["workflows"] >= 600  # wrk may send a few past its quota
    assert (burst["lost"], burst["extra"]) == (0, 0)
    idle = report["idle_latency_ms"]
    assert len(idle["all"]) == 10 and idle["p99"] >= idle["p50"] > 0


def test_sleepers_benchmark_reports_lateness_and_worker_memory() -> None:
    report = run_benchmark("sleepers", "--count", "50", "--seconds", "2", "--rate", "100")
    assert len(report["variants"]["timer lateness"]["runs_s"]) == 50
    assert report["lateness_s"]["p50"] >= 0
    rss = report["worker_rss_mb"]
    assert rss["peak"] >= rss["asleep_peak"] >= rss["all_started"] > rss["idle"] * 0.5


def test_report_renders_the_table_and_plot_from_results(tmp_path: Path) -> None:
    from bench import report

    results = tmp_path / "results"
    results.mkdir()
    machine = {"cpus": 2, "python": "3.11", "platform": "linux", "versions": "x"}
    (results / "overhead-1.json").write_text(
        json.dumps(
            {
                "benchmark": "overhead",
                "ratio": 0.5,
                "machine": machine,
                "variants": {
                    "a": {"median_s": 1.0, "per_s": 10.0, "ratio_to_baseline": 1.0},
                    "b": {"median_s": 2.0, "per_s": 5.0, "ratio_to_baseline": 0.5},
                },
            }
        )
    )
    page = tmp_path / "benchmarks.md"
    page.write_text(f"intro\n{report.BEGIN}\nold\n{report.END}\noutro\n")
    report.render(results, page, tmp_path / "plot.png")
    text = page.read_text()
    assert "old" not in text and "intro" in text and "outro" in text
    assert "| overhead | b | 5.0 wf/s | 0.50 |" in text
    assert (tmp_path / "plot.png").stat().st_size > 1000


def test_sleepers_benchmark_shares_the_timers_between_two_workers() -> None:
    report = run_benchmark(
        "sleepers", "--count", "40", "--seconds", "2", "--workers", "2", written_as="sleepers_workers2"
    )
    assert report["benchmark"] == "sleepers_workers2" and report["workers"] == 2
    assert report["empty_workflow_rate_per_s"] > 0  # paced at half of it
    assert abs(report["start_rate_per_s"] - report["empty_workflow_rate_per_s"] / 2) <= 0.1
    assert len(report["variants"]["timer lateness"]["runs_s"]) == 40
    assert report["worker_rss_mb"]["peak"] > 0  # the goal's figure (paced, they may never all sleep at once)


def test_dashboard_benchmark_serves_every_page_from_both_storages() -> None:
    report = run_benchmark("dashboard", "--repeats", "1", "--small", "20", "--large", "400")
    ratios = report["ratios (small / large time: 1.0 = no slower with 100x the runs)"]
    assert set(ratios) == {
        "runs, first page", "runs, 50th page", "runs, by status", "runs, by tag", "runs, search", "overview",
        "queues",
    }  # fmt: skip
    assert all(ratio > 0 for ratio in ratios.values())


def test_streams_benchmark_measures_the_runs_list_with_streams_open_and_without() -> None:
    report = run_benchmark("streams", "--repeats", "1", "--streams", "10", "--requests", "10")
    assert set(report["variants"]) == {"no streams", "10 streams open"}
    assert report["p50 ratio (with streams / without; goal <= 2)"] > 0
    assert report["variants"]["10 streams open"]["cpu_s"]["api"] > 0


def test_tuning_benchmark_measures_a_process_knob_and_a_server_knob_beside_the_defaults() -> None:
    args = ("--runs", "10", "--in-flight", "5", "--repeats", "1", "pollers-20", "server-sqlite-cache")
    report = run_benchmark("tuning", *args)
    assert set(report["ratio_to_defaults"]) == {
        "serve · pollers-20", "split · pollers-20", "serve · server-sqlite-cache",
        "split · server-sqlite-cache",
    }  # fmt: skip
    variants = report["variants"]
    assert variants["split · pollers-20"]["cpu_s"]["worker-pollers-20"] > 0  # the knob's own worker did it
    assert variants["serve · server-sqlite-cache"]["cpu_s"]["serve-server-sqlite-cache"] > 0


def test_fairness_benchmark_measures_the_late_tenants_wait_with_and_without_fair_share() -> None:
    report = run_benchmark("fairness", "--backlog", "300", "--late", "5", "--repeats", "1")
    assert set(report["variants"]) == {
        "fair share (tenants take turns)",
        "plain order (priority, then arrival)",
    }
    assert report["b_wait_idle_s"]["p99"] >= report["b_wait_idle_s"]["p50"] > 0
    fair = report["b_wait_s fair share (tenants take turns)"]
    assert fair["p99"] >= fair["p50"] > 0 and report["drain_ratio"] > 0


def test_datastreams_benchmark_measures_append_and_pipe_rates_and_the_latency_to_a_browser() -> None:
    report = run_benchmark(
        "datastreams", "--chunks", "200", "--paced", "20", "--interval", "0.02", "--repeats", "1"
    )
    append, pipe = "append (one write per chunk)", "pipe (batched while a write is in flight)"
    assert set(report["variants"]) == {append, pipe}
    assert report[f"chunks_per_s {append}"] > 0 and report[f"chunks_per_s {pipe}"] > 0
    latency = report["latency_append_to_eventsource_s"]
    assert latency["n"] == 20 and latency["p99"] >= latency["p50"] > 0
