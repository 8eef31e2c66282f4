"""A run's steps on one time axis (the run page's trace view): each step a bar placed by its start and
length, so steps that ran at once are visibly side by side; an activity retried shows, before its last
attempt, the span of its earlier attempts and their backoff; timers are bars, signals and updates marks.
longhaul's own bookkeeping is left out unless asked for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from longhaul.humanize import duration
from longhaul.server.timeline import Timeline, TimelineStep

MIN_WIDTH = 0.4  # percent of the axis: a step of a few milliseconds still shows (and can be clicked)
TICKS = 5


@dataclass(frozen=True)
class Bar:
    """One step's bar: ``row`` is its row in the steps table (its input, result and error)."""

    row: int
    step: TimelineStep
    left: float  # percent of the axis
    width: float
    retrying: float  # percent of the axis, from the bar's start: earlier attempts and their backoff
    took: str

    @property
    def mark(self) -> bool:
        """A moment rather than a span (a signal received)."""
        return self.step.kind == "signal"


@dataclass(frozen=True)
class Trace:
    bars: list[Bar]
    ticks: list[tuple[float, str]]  # percent of the axis, time since the run began
    hidden: int  # bookkeeping steps left out


def trace_of(timeline: Timeline, now: datetime, *, bookkeeping: bool = False) -> Trace | None:
    """The bars of ``timeline``'s steps on one axis, from the first step's start to the last end (or now,
    for steps still going); None for a run with no steps."""
    if not timeline.steps:
        return None
    begin = min(step.started_at for step in timeline.steps)
    end = max(max(step.ended_at or now, step.started_at) for step in timeline.steps)
    span = max((end - begin).total_seconds(), 0.001)

    def at(moment: datetime) -> float:
        return 100 * (moment - begin).total_seconds() / span

    bars = []
    for row, step in enumerate(timeline.steps):
        if step.bookkeeping and not bookkeeping:
            continue
        left, stop = at(step.started_at), at(step.ended_at or now)
        width = max(stop - left, MIN_WIDTH)
        retrying = at(step.last_attempt_at) - left if step.attempts > 1 and step.last_attempt_at else 0.0
        seconds = ((step.ended_at or now) - step.started_at).total_seconds()
        took = duration(seconds) + ("" if step.ended_at else " so far")
        bars.append(Bar(row, step, min(left, 100 - width), width, min(retrying, width), took))
    ticks = [(100 * i / (TICKS - 1), duration(span * i / (TICKS - 1)) if i else "0") for i in range(TICKS)]
    return Trace(
        bars, ticks, hidden=sum(step.bookkeeping for step in timeline.steps) if not bookkeeping else 0
    )
