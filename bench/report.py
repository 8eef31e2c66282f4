"""``python -m bench report``: the latest result of each benchmark → docs/benchmarks.md's table and plot.

The table lives between two markers in docs/benchmarks.md (the prose around it is kept), so the page
always shows numbers from result files, never numbers typed by hand.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import RESULTS, ROOT

DOCS = ROOT / "docs" / "benchmarks.md"
PLOT = ROOT / "docs" / "benchmarks.png"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
NAMES = (
    "throughput",
    "overhead",
    "limit",
    "queue",
    "sleepers",
    "sleepers_workers2",
    "transcode",
    "fairness",
    "datastreams",
)
RATES = ("throughput", "overhead", "limit", "queue")  # benchmarks whose variants are rates


def latest(results: Path, name: str) -> dict[str, Any] | None:
    files = sorted(results.glob(f"{name}-*.json"))
    return json.loads(files[-1].read_text()) if files else None


def _rate_rows(result: dict[str, Any], unit: str) -> list[str]:
    rows = []
    for variant, row in result["variants"].items():
        rate = f"{row['per_s']:.1f} {unit}" if "per_s" in row else f"{row['median_s']:.2f} s"
        rows.append(f"| {result['benchmark']} | {variant} | {rate} | {row['ratio_to_baseline']:.2f} |")
    return rows


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| benchmark | variant | median | ratio to baseline |", "|---|---|---|---|"]
    for name in RATES:
        if name in results:
            lines += _rate_rows(results[name], "wf/s" if name != "queue" else "events/s")
    if "transcode" in results:
        lines += _rate_rows(results["transcode"], "")
    notes = [note for name, write in NOTES.items() if name in results for note in write(results[name])]
    machine = next(iter(results.values()))["machine"]
    notes.append(
        f"- machine: {machine['cpus']} CPUs, Python {machine['python']}, {machine['platform']}"
        + (f"; {machine['versions']}" if "versions" in machine else "")
    )
    return "\n".join(lines) + "\n\n" + "\n".join(notes)


def _overhead_notes(result: dict[str, Any]) -> list[str]:
    return [f"- overhead: ratio b/a **{result['ratio']}** (goal ≥ 0.9)"]


def _limit_notes(limit: dict[str, Any]) -> list[str]:
    return [
        f"- limit: hello **{limit['hello ratio']}**, order **{limit['order ratio']}** of the same steps "
        "written by hand in plain temporalio (goal ≥ 0.9)"
    ]


def _transcode_notes(result: dict[str, Any]) -> list[str]:
    return [f"- transcode: ratio **{result['ratio']}** (goal ≥ 0.95)"]


def _throughput_notes(result: dict[str, Any]) -> list[str]:
    latency = "; ".join(
        f"{variant}: p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms"
        for variant, row in result["latency"].items()
    )
    return [
        f"- throughput ({result['runs']} runs, {result['in_flight']} in flight): longhaul serve "
        f"**{result['ratio_to_plain']} times** hand-written temporalio with activities (goal ≥ 1.8), "
        f"**{result['ratio_to_local_eager']}** of hand-written local activities + eager start (goal ≥ 0.9)",
        f"- throughput, latency of {result['sequential']} sequential runs, send → result: {latency}; "
        f"longhaul's p50 **{result['latency_p50_ratio_to_local_eager']} times** local + eager's (goal ≤ 1.5)",
    ]


def _queue_notes(queue: dict[str, Any]) -> list[str]:
    drain, burst, idle = queue["drain"], queue["burst"], queue["idle_latency_ms"]
    return [
        f"- run queue, accept: single events (wrk, 50 connections) **{queue['single_ratio']} times** and "
        f"batches of 500 **{queue['batch_ratio']} times** the raw start rate (goals 5 and 25); single "
        f"accept p99 {queue['accept_p99_ms']} ms saturated"
        + (
            f", **{half['p99_ms']} ms** at half that rate ({half['achieved_per_s']}/s; goal ≤ 25)"
            if (half := queue.get("accept_half_load"))
            else ""
        ),
        f"- run queue, drain: {drain['runs']} queued runs started by one dispatcher at "
        f"{drain['dispatcher_starts_per_s']}/s against {drain['raw_starts_per_s']}/s raw: "
        f"**{drain['ratio']}** (goal ≥ 0.9)",
        f"- run queue, burst of {burst['events']} events: statuses {burst['statuses']}, accepted in "
        f"{burst['accepted_in_s']} s, all started in {burst['all_started_in_s']} s; {burst['runs_recorded']} "
        f"runs, {burst['workflows']} workflows: lost **{burst['lost']}**, extra {burst['extra']}",
        f"- run queue, idle: accept → workflow started p50 **{idle['p50']} ms**, p99 {idle['p99']} ms "
        f"(goal p50 ≤ 20); a raw start_workflow call: p50 {idle.get('raw_start_p50', 'not measured')} ms",
    ]


def _sleepers_notes(sleepers: dict[str, Any]) -> list[str]:
    rss, late = sleepers["worker_rss_mb"], sleepers["lateness_s"]
    workers = f"{sleepers.get('workers', 1)} worker(s)"
    pace = sleepers.get("start_rate_per_s", "?")
    empty = sleepers.get("empty_workflow_rate_per_s")
    return [
        f"- sleepers, {workers}: {sleepers['workflows']} workflows started at {pace}/s"
        + (f" (half the empty-workflow rate, {empty}/s)" if isinstance(empty, float) else "")
        + f" on a {sleepers['sleep_seconds']:g} s timer; largest worker's RSS peak **{rss['peak']} MB** "
        f"(goal < 500; idle {rss['idle']} MB, "
        + (
            f"{rss['asleep_peak']} MB while all slept"
            if rss.get("asleep_peak")
            else "never all asleep at once"
        )
        + f"); timer lateness p50 {late['p50']} s, p99 **{late['p99']} s** (goal < 2)"
    ]


# The notes under the table, in this order, for the benchmarks that have a result.
def _fairness_notes(result: dict[str, Any]) -> list[str]:
    waits = "; ".join(
        f"{variant}: p50 {wait['p50']} s, p99 {wait['p99']} s"
        for variant in result["variants"]
        for wait in [result[f"b_wait_s {variant}"]]
    )
    return [
        f"- fairness (tenant A's {result['backlog']:,} runs, then B's {result['late']}): B's wait {waits}; "
        f"idle p99 {result['b_wait_idle_s']['p99']} s; goal p99 ≤ {result['b_p99_goal_s']} s; A's drain "
        f"with fair share **{result['drain_ratio']}** of the plain order (goal ≥ 0.95)"
    ]


def _datastreams_notes(result: dict[str, Any]) -> list[str]:
    rates = ", ".join(f"{variant} {result[f'chunks_per_s {variant}']:,}/s" for variant in result["variants"])
    latency = result["latency_append_to_eventsource_s"]
    return [
        f"- datastreams (one activity, {result['chunks']:,} chunks of {result['chunk_chars']} characters): "
        f"{rates}; append → a browser's EventSource p50 {latency['p50'] * 1000:.0f} ms, p99 "
        f"**{latency['p99'] * 1000:.0f} ms** (goal ≤ {result['latency_p99_goal_s'] * 1000:.0f} ms)"
    ]


NOTES: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "throughput": _throughput_notes,
    "overhead": _overhead_notes,
    "limit": _limit_notes,
    "queue": _queue_notes,
    "sleepers_workers2": _sleepers_notes,
    "sleepers": _sleepers_notes,
    "transcode": _transcode_notes,
    "fairness": _fairness_notes,
    "datastreams": _datastreams_notes,
}


def plot(results: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (rates, latency) = plt.subplots(1, 2, figsize=(13, 4.8))
    labels, values = [], []
    for name in RATES:
        for variant, row in results.get(name, {}).get("variants", {}).items():
            labels.append(f"{name}\n{variant}")
            values.append(row["per_s"])
    rates.barh(labels[::-1], values[::-1], color="#4477aa")
    rates.set_xscale("log")  # workflows per second beside events accepted per second
    rates.set_xlabel("per second (median of interleaved runs, log)")
    rates.set_title("Throughput per variant")
    rates.tick_params(axis="y", labelsize=7)
    for name, scale, label in (
        ("queue", 1.0, "accept → workflow started, idle (ms)"),
        ("sleepers_workers2", 1000.0, "timer lateness, two workers (ms)"),
        ("sleepers", 1000.0, "timer lateness, one worker (ms)"),
    ):
        result = results.get(name)
        if not result:
            continue
        series = (
            result["idle_latency_ms"]["all"]
            if name == "queue"
            else result["variants"]["timer lateness"]["runs_s"]
        )
        ordered = sorted(v * scale for v in series)
        if ordered:
            latency.plot(ordered, [i / len(ordered) for i in range(1, len(ordered) + 1)], label=label)
    latency.set_xscale("log")
    latency.set_xlabel("milliseconds (log)")
    latency.set_ylabel("fraction ≤ x")
    latency.set_title("Latency distribution (CDF)")
    if latency.lines:
        latency.legend()
    latency.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def render(results_dir: Path, page: Path, plot_path: Path) -> int:
    """Write the table into ``page`` (between the markers) and the plot; returns how many results."""
    results = {name: result for name in NAMES if (result := latest(results_dir, name)) is not None}
    if not results:
        raise SystemExit(f"no results in {results_dir}: run a benchmark first")
    head, _, rest = page.read_text().partition(BEGIN)
    _, _, tail = rest.partition(END)
    page.write_text(f"{head}{BEGIN}\n{table(results)}\n{END}{tail}")
    plot(results, plot_path)
    return len(results)


def main() -> None:
    count = render(RESULTS, DOCS, PLOT)
    print(f"updated {DOCS.relative_to(ROOT)} and {PLOT.relative_to(ROOT)} from {count} results")
