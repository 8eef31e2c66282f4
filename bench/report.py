"""``python -m bench report``: the latest result of each benchmark → docs/benchmarks.md's table and plot.

The table lives between two markers in docs/benchmarks.md (the prose around it is kept), so the page
always shows numbers from result files, never numbers typed by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.harness import RESULTS, ROOT

DOCS = ROOT / "docs" / "benchmarks.md"
PLOT = ROOT / "docs" / "benchmarks.png"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
NAMES = ("overhead", "limit", "queue", "sleepers", "sleepers_workers2", "transcode")


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
    for name in ("overhead", "limit", "queue"):
        if name in results:
            lines += _rate_rows(results[name], "wf/s" if name != "queue" else "events/s")
    if "transcode" in results:
        lines += _rate_rows(results["transcode"], "")
    notes = []
    if "overhead" in results:
        notes.append(f"- overhead: ratio b/a **{results['overhead']['ratio']}** (goal ≥ 0.9)")
    if "limit" in results:
        limit = results["limit"]
        notes.append(
            f"- limit: hello **{limit['hello ratio']}**, order **{limit['order ratio']}** of the same steps "
            "written by hand in plain temporalio (goal ≥ 0.9)"
        )
    if "queue" in results:
        notes += _queue_notes(results["queue"])
    for name in ("sleepers_workers2", "sleepers"):
        if name in results:
            notes.append(_sleepers_note(results[name]))
    if "transcode" in results:
        notes.append(f"- transcode: ratio **{results['transcode']['ratio']}** (goal ≥ 0.95)")
    machine = next(iter(results.values()))["machine"]
    notes.append(
        f"- machine: {machine['cpus']} CPUs, Python {machine['python']}, {machine['platform']}"
        + (f"; {machine['versions']}" if "versions" in machine else "")
    )
    return "\n".join(lines) + "\n\n" + "\n".join(notes)


def _queue_notes(queue: dict[str, Any]) -> list[str]:
    drain, burst, idle = queue["drain"], queue["burst"], queue["idle_latency_ms"]
    return [
        f"- run queue, accept: single events (wrk, 50 connections) **{queue['single_ratio']} times** and "
        f"batches of 500 **{queue['batch_ratio']} times** the raw start rate (goals 5 and 25); single "
        f"accept p99 **{queue['accept_p99_ms']} ms** (goal ≤ 25)",
        f"- run queue, drain: {drain['runs']} queued runs started by one dispatcher at "
        f"{drain['dispatcher_starts_per_s']}/s against {drain['raw_starts_per_s']}/s raw: "
        f"**{drain['ratio']}** (goal ≥ 0.9)",
        f"- run queue, burst of {burst['events']} events: statuses {burst['statuses']}, accepted in "
        f"{burst['accepted_in_s']} s, all started in {burst['all_started_in_s']} s; {burst['runs_recorded']} "
        f"runs, {burst['workflows']} workflows: lost **{burst['lost']}**, extra {burst['extra']}",
        f"- run queue, idle: accept → workflow started p50 **{idle['p50']} ms**, p99 {idle['p99']} ms "
        f"(goal p50 ≤ 20); a raw start_workflow call: p50 {idle.get('raw_start_p50', 'not measured')} ms",
    ]


def _sleepers_note(sleepers: dict[str, Any]) -> str:
    rss, late = sleepers["worker_rss_mb"], sleepers["lateness_s"]
    workers = f"{sleepers.get('workers', 1)} worker(s)"
    return (
        f"- sleepers, {workers}: {sleepers['workflows']} workflows "
        f"on a {sleepers['sleep_seconds']:g} s timer; largest worker's RSS while they sleep "
        f"**{rss.get('asleep_peak')} MB** (goal < 500; idle {rss['idle']} MB, peak with the wake-ups "
        f"{rss['peak']} MB); timer lateness p50 {late['p50']} s, p99 **{late['p99']} s** (goal < 2)"
    )


def plot(results: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (rates, latency) = plt.subplots(1, 2, figsize=(13, 4.8))
    labels, values = [], []
    for name in ("overhead", "limit", "queue"):
        for variant, row in results.get(name, {}).get("variants", {}).items():
            labels.append(f"{name}\n{variant}")
            values.append(row["per_s"])
    rates.barh(labels[::-1], values[::-1], color="#4477aa")
    rates.set_xlabel("per second (median of interleaved runs)")
    rates.set_title("Throughput per variant")
    rates.tick_params(axis="y", labelsize=7)
    for name, scale, label in (
        ("queue", 1.0, "accept → workflow started, idle (ms)"),
        ("sleepers", 1000.0, "timer lateness (ms)"),
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
