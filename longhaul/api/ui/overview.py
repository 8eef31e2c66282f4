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
from longhaul.storage import RunStore

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
CHART_TOP = 18  # above the tallest bar: the line that says what its height counts


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


def _window(title: str, counted: list[tuple[int, RunStatus, int]], start: datetime, bucket: timedelta,
            buckets: int, label: str) -> Window:  # fmt: skip
    per_bucket: list[Counter[RunStatus]] = [Counter() for _ in range(buckets)]
    for index, status, count in counted:
        per_bucket[min(max(index, 0), buckets - 1)][status] += count
    counts: Counter[RunStatus] = sum(per_bucket, Counter())
    peak = max([sum(c.values()) for c in per_bucket] + [1])
    width = CHART_WIDTH / buckets
    bars = []
    for index, bucket_counts in enumerate(per_bucket):
        bar = Bar(x=index * width, width=width - 2, label=(start + index * bucket).strftime(label),
                  total=sum(bucket_counts.values()))  # fmt: skip
        y = float(CHART_HEIGHT)
        for status, colour in CHART_STATUSES.items():
            if count := bucket_counts[status]:
                height = count / peak * (CHART_HEIGHT - CHART_TOP)
                y -= height
                bar.segments.append(Segment(status.value, colour, y, height, count))
        bars.append(bar)
    finished = sum(n for status, n in counts.items() if status.terminal)
    return Window(
        title=title, counts={status.value: n for status, n in counts.most_common()},
        total=sum(counts.values()), finished=finished,
        failed=sum(n for status, n in counts.items() if status in FAILED), bars=bars, peak=peak,
    )  # fmt: skip


def _workflows(
    counted: list[tuple[str, RunStatus, int]], durations: list[tuple[str, float]]
) -> list[WorkflowDurations]:
    seconds: dict[str, list[float]] = defaultdict(list)
    for workflow, took in durations:
        seconds[workflow].append(took)
    per: dict[str, Counter[RunStatus]] = defaultdict(Counter)
    for workflow, status, count in counted:
        per[workflow][status] += count
    return [
        WorkflowDurations(
            workflow,
            runs=sum(c.values()),
            finished=sum(n for s, n in c.items() if s.terminal),
            failed=sum(n for s, n in c.items() if s in FAILED),
            p50=percentile(seconds[workflow], 50),
            p95=percentile(seconds[workflow], 95),
        )
        for workflow, c in sorted(per.items())
    ]


async def overview(store: RunStore, tenant: str, now: datetime | None = None) -> Overview:
    """The tenant's last hour (12 bars of 5 minutes) and last day (24 bars of an hour), counted in the
    database; durations of the runs of the last day that completed."""
    now = now or utcnow()
    day_start = (now - timedelta(days=1)).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    hour_start = now - timedelta(hours=1)
    hour_start = hour_start.replace(minute=hour_start.minute - hour_start.minute % 5, second=0,
                                    microsecond=0) + timedelta(minutes=5)  # fmt: skip
    hour = await store.created_per_bucket(tenant, hour_start, timedelta(minutes=5))
    day = await store.created_per_bucket(tenant, day_start, timedelta(hours=1))
    return Overview(
        windows=[
            _window("hour", hour, hour_start, timedelta(minutes=5), 12, "%H:%M"),
            _window("day", day, day_start, timedelta(hours=1), 24, "%b %d, %H:%M"),  # a day: which day
        ],
        workflows=_workflows(
            await store.per_workflow(tenant, day_start), await store.durations(tenant, day_start)
        ),
        legend={status.value: colour for status, colour in CHART_STATUSES.items()},
    )
