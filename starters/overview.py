"""The dashboard's overview of a tenant's runs: how many per status over the last hour and day, the
failure rate, and each workflow's p50/p95 duration — with the bars of a small chart laid out here, so the
page draws it as inline SVG (no chart library, no script)."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from longhaul.db import utcnow
from longhaul.models import RunStatus
from longhaul.storage import RunStore, RunTimes

FAILED = frozenset({RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.EXPIRED})
# The chart's stack order and colours (the dashboard's status colours).
CHART_STATUSES: dict[RunStatus, str] = {
    RunStatus.COMPLETED: "#2da44e",
    RunStatus.RUNNING: "#218bff",
    RunStatus.QUEUED: "#54aeff",
    RunStatus.PENDING: "#8c959f",
    RunStatus.DELAYED: "#d0d7de",
    RunStatus.CANCELLED: "#d4a72c",
    RunStatus.FAILED: "#cf222e",
    RunStatus.TIMED_OUT: "#a40e26",
    RunStatus.EXPIRED: "#fa4549",
}
CHART_WIDTH, CHART_HEIGHT = 600, 140


@dataclass
class Segment:
    status: str
    colour: str
    y: float
    height: float
    count: int


@dataclass
class Bar:
    x: float
    width: float
    label: str  # the bucket's start time, for the bar's tooltip
    total: int
    segments: list[Segment] = field(default_factory=list)


@dataclass
class Window:
    """Runs created in the last ``title`` (hour, day): per status, the failure rate, and a chart of runs
    created per bucket, stacked by status."""

    title: str
    counts: dict[str, int]
    total: int
    finished: int
    failed: int
    bars: list[Bar]
    peak: int

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.finished if self.finished else None


@dataclass
class WorkflowDurations:
    workflow: str
    runs: int
    finished: int
    failed: int
    p50: float | None  # seconds from start to finish
    p95: float | None


@dataclass
class Overview:
    windows: list[Window]
    workflows: list[WorkflowDurations]
    legend: dict[str, str]


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank ``q`` percentile (0 < q ≤ 100) of ``values``; None for none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _window(title: str, runs: list[RunTimes], start: datetime, bucket: timedelta, buckets: int) -> Window:
    inside = [run for run in runs if run.created_at >= start]
    counts = Counter(run.status.value for run in inside)
    per_bucket: list[Counter[RunStatus]] = [Counter() for _ in range(buckets)]
    for run in inside:
        index = min(int((run.created_at - start) / bucket), buckets - 1)
        per_bucket[index][run.status] += 1
    peak = max([sum(c.values()) for c in per_bucket] + [1])
    width = CHART_WIDTH / buckets
    bars = []
    for index, bucket_counts in enumerate(per_bucket):
        bar = Bar(x=index * width, width=width - 2, label=(start + index * bucket).strftime("%H:%M"),
                  total=sum(bucket_counts.values()))  # fmt: skip
        y = float(CHART_HEIGHT)
        for status, colour in CHART_STATUSES.items():
            if count := bucket_counts[status]:
                height = count / peak * CHART_HEIGHT
                y -= height
                bar.segments.append(Segment(status.value, colour, y, height, count))
        bars.append(bar)
    finished = [run for run in inside if run.status.terminal]
    return Window(
        title=title, counts=dict(counts.most_common()), total=len(inside), finished=len(finished),
        failed=sum(run.status in FAILED for run in finished), bars=bars, peak=peak,
    )  # fmt: skip


def _durations(runs: list[RunTimes]) -> list[WorkflowDurations]:
    by_workflow: dict[str, list[RunTimes]] = defaultdict(list)
    for run in runs:
        by_workflow[run.workflow].append(run)
    rows = []
    for workflow, its in sorted(by_workflow.items()):
        seconds = [
            (run.finished_at - run.started_at).total_seconds()
            for run in its
            if run.status == RunStatus.COMPLETED and run.started_at and run.finished_at
        ]
        finished = [run for run in its if run.status.terminal]
        failed = sum(run.status in FAILED for run in finished)
        p50, p95 = percentile(seconds, 50), percentile(seconds, 95)
        rows.append(WorkflowDurations(workflow, len(its), len(finished), failed, p50, p95))
    return rows


async def overview(store: RunStore, tenant: str, now: datetime | None = None) -> Overview:
    """The tenant's last hour (12 bars of 5 minutes) and last day (24 bars of an hour); durations of the
    runs of the last day that completed."""
    now = now or utcnow()
    day_start = (now - timedelta(days=1)).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    hour_start = now - timedelta(hours=1)
    hour_start = hour_start.replace(minute=hour_start.minute - hour_start.minute % 5, second=0,
                                    microsecond=0) + timedelta(minutes=5)  # fmt: skip
    runs = await store.created_since(tenant, min(day_start, hour_start))
    return Overview(
        windows=[
            _window("hour", runs, hour_start, timedelta(minutes=5), 12),
            _window("day", runs, day_start, timedelta(hours=1), 24),
        ],
        workflows=_durations([run for run in runs if run.created_at >= day_start]),
        legend={status.value: colour for status, colour in CHART_STATUSES.items()},
    )
