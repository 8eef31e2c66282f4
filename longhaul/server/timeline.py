"""A run's steps as its Temporal history tells them: each activity (start, end, attempts, what it was
given and returned), local activity, timer, signal, update and child workflow, in order.

Why from the history and not app storage: the history is the truth of what ran and how often (retries,
timeouts, the failure's stack); the run record is what the product reports. Payloads are decoded with the
deployment's data converter (decrypted when payload keys are set) for a caller of the run's tenant, and
cut to a readable length: the page shows what a step did, not megabytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from longhaul.humanize import duration
from longhaul.models import RunRecord
from longhaul.server.envelopes import TemporalUnavailableError
from longhaul.server.resume import BOOKKEEPING
from longhaul.temporal import is_unavailable

SHOWN_CHARS = 600  # of each decoded payload
MAX_STEPS = 2000  # a page of a very long history (a bulk action over 100,000 runs) stays readable

StepKind = Literal["workflow", "activity", "local_activity", "timer", "signal", "update", "child"]
StepStatus = Literal["scheduled", "running", "completed", "failed", "timed_out", "cancelled", "fired"]


class TimelineStep(BaseModel):
    """One step of a run, as its Temporal history records it."""

    kind: StepKind
    name: str = Field(description="Activity type, timer id, signal name, update name or child workflow id.")
    status: StepStatus
    started_at: datetime
    ended_at: datetime | None = None
    attempts: int = 1
    last_attempt_at: datetime | None = Field(
        default=None,
        description="When its last attempt began (an activity retried: before it, earlier attempts and "
        "their backoff).",
    )
    summary: str | None = Field(default=None, description="The step's summary (Temporal user metadata).")
    input: str | None = Field(default=None, description="What it was given, decoded, cut to 600 characters.")
    result: str | None = Field(default=None, description="What it returned, decoded and cut.")
    failure: str | None = None
    stack: str | None = Field(default=None, description="The failure's stack trace, if it has one.")
    bookkeeping: bool = Field(default=False, description="longhaul's own record-keeping, not a user step.")


class Timeline(BaseModel):
    run_id: str
    workflow_id: str
    events: int = Field(description="Events in the history read.")
    steps: list[TimelineStep]
    truncated: bool = Field(default=False, description=f"More than {MAX_STEPS} steps: the first are shown.")


@dataclass
class _Reader:
    client: Client
    steps: list[TimelineStep] = field(default_factory=list)
    by_event: dict[int, TimelineStep] = field(default_factory=dict)  # scheduling event id → its step
    timers: dict[str, TimelineStep] = field(default_factory=dict)  # timer id → its step
    updates: dict[str, TimelineStep] = field(default_factory=dict)  # update id → its step

    async def text(self, payloads: Payloads, *, plain: bool = False) -> str | None:
        """The payloads decoded, as JSON (``plain``: a string as itself), cut to a readable length."""
        if not payloads.payloads:
            return None
        try:
            values = await self.client.data_converter.decode(list(payloads.payloads))
        except Exception as error:  # another deployment's key, a tampered payload: say so, go on
            return f"(cannot decode: {error})"
        value: Any = values[0] if len(values) == 1 else values
        try:
            shown = (
                value
                if plain and isinstance(value, str)
                else json.dumps(value, ensure_ascii=False, default=str)
            )
        except (TypeError, ValueError):
            shown = repr(value)
        return shown if len(shown) <= SHOWN_CHARS else shown[: SHOWN_CHARS - 1] + "…"

    async def begin(
        self, event: HistoryEvent, kind: StepKind, name: str, status: StepStatus, **more: Any
    ) -> TimelineStep:
        """A step that ``event`` begins."""
        return await self.add(
            event, TimelineStep(kind=kind, name=name, status=status, started_at=_time(event), **more)
        )

    async def add(self, event: HistoryEvent, step: TimelineStep) -> TimelineStep:
        if event.HasField("user_metadata") and event.user_metadata.HasField("summary"):
            step.summary = await self.text(Payloads(payloads=[event.user_metadata.summary]), plain=True)
        self.steps.append(step)
        self.by_event[event.event_id] = step
        return step

    def end(self, scheduled_id: int, event: HistoryEvent, status: StepStatus) -> TimelineStep | None:
        step = self.by_event.get(scheduled_id)
        if step is not None:
            step.status, step.ended_at = status, _time(event)
        return step

    def fail(self, step: TimelineStep | None, failure: Failure) -> None:
        if step is not None:
            step.failure = failure.message or None
            step.stack = failure.stack_trace or (
                failure.cause.stack_trace if failure.HasField("cause") else None
            )

    async def read(self, event: HistoryEvent) -> None:  # noqa: C901, PLR0912, PLR0915 - a branch per event type
        kind = event.event_type
        # The event's attributes (one field per event type); typed loosely: each branch knows its own.
        a: Any = getattr(event, event.WhichOneof("attributes") or "", None)
        step: TimelineStep | None
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            step = await self.begin(
                event, "workflow", a.workflow_type.name, "running", attempts=a.attempt or 1
            )
            step.input = await self.text(a.input)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            if self.steps:
                self.steps[0].status, self.steps[0].ended_at = "completed", _time(event)
                self.steps[0].result = await self.text(a.result)
        elif kind in _WORKFLOW_CLOSED and self.steps:
            self.steps[0].status, self.steps[0].ended_at = _WORKFLOW_CLOSED[kind], _time(event)
            if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
                self.fail(self.steps[0], a.failure)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            step = await self.begin(event, "activity", a.activity_type.name, "scheduled")
            step.input = await self.text(a.input)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            if (step := self.by_event.get(a.scheduled_event_id)) is not None:
                step.status, step.attempts, step.last_attempt_at = "running", a.attempt, _time(event)
                if a.HasField("last_failure"):
                    self.fail(step, a.last_failure)  # the attempt before this one failed so
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            if (step := self.end(a.scheduled_event_id, event, "completed")) is not None:
                step.result, step.failure, step.stack = await self.text(a.result), None, None
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            self.fail(self.end(a.scheduled_event_id, event, "failed"), a.failure)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
            self.fail(self.end(a.scheduled_event_id, event, "timed_out"), a.failure)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
            self.end(a.scheduled_event_id, event, "cancelled")
        elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
            await self._marker(event)
        elif kind == EventType.EVENT_TYPE_TIMER_STARTED:
            seconds = a.start_to_fire_timeout.ToTimedelta().total_seconds()
            step = await self.begin(event, "timer", f"{duration(seconds)} timer", "running")
            self.timers[a.timer_id] = step
        elif kind == EventType.EVENT_TYPE_TIMER_FIRED:
            if (step := self.timers.get(a.timer_id)) is not None:
                step.status, step.ended_at = "fired", _time(event)
        elif kind == EventType.EVENT_TYPE_TIMER_CANCELED:
            if (step := self.timers.get(a.timer_id)) is not None:
                step.status, step.ended_at = "cancelled", _time(event)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            step = await self.begin(event, "signal", a.signal_name, "completed", ended_at=_time(event))
            step.input = await self.text(a.input)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            step = await self.begin(event, "update", a.accepted_request.input.name, "running")
            step.input = await self.text(a.accepted_request.input.args)
            self.updates[a.protocol_instance_id] = step
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            if (step := self.updates.get(a.meta.update_id)) is not None:
                step.ended_at = _time(event)
                if a.outcome.HasField("failure"):
                    step.status = "failed"
                    self.fail(step, a.outcome.failure)
                else:
                    step.status, step.result = "completed", await self.text(a.outcome.success)
        elif kind == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            step = await self.begin(event, "child", a.workflow_id, "scheduled", summary=a.workflow_type.name)
            step.input = await self.text(a.input)
        elif kind in _CHILD_ENDED:
            step = self.end(a.initiated_event_id, event, _CHILD_ENDED[kind])
            if kind == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED:
                self.fail(step, a.failure)
            elif kind == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED and step is not None:
                step.result = await self.text(a.result)
        elif kind == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED and (
            step := self.by_event.get(a.initiated_event_id)
        ):
            step.status = "running"

    async def _marker(self, event: HistoryEvent) -> None:
        """A local activity's marker: its type, attempts and result (patches and others are skipped)."""
        a = event.marker_recorded_event_attributes
        if a.marker_name != "core_local_activity" or "data" not in a.details:
            return
        data = json.loads(a.details["data"].payloads[0].data or b"{}")
        name = str(data.get("activity_type", "local activity"))
        failed = a.HasField("failure")
        # When it was first scheduled and when it completed (the worker's clock), else the marker's time.
        began, ended = (
            _marker_time(data.get(key)) or _time(event) for key in ("original_schedule_time", "complete_time")
        )
        step = await self.add(event, TimelineStep(
            kind="local_activity", name=name, status="failed" if failed else "completed",
            started_at=min(began, ended), ended_at=max(began, ended), attempts=int(data.get("attempt", 1)),
            bookkeeping=name in BOOKKEEPING,
        ))  # fmt: skip
        if failed:
            self.fail(step, a.failure)
        elif "result" in a.details:
            step.result = await self.text(a.details["result"])


def _marker_time(value: Any) -> datetime | None:
    """A time in a local activity marker's data (``{"seconds", "nanos"}``)."""
    if not isinstance(value, dict) or "seconds" not in value:
        return None
    return datetime.fromtimestamp(value["seconds"] + value.get("nanos", 0) / 1e9, tz=UTC)


_WORKFLOW_CLOSED: dict[EventType.ValueType, StepStatus] = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed_out",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "cancelled",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "cancelled",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "completed",
}
_CHILD_ENDED: dict[EventType.ValueType, StepStatus] = {
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED: "completed",
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED: "failed",
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT: "timed_out",
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED: "cancelled",
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED: "cancelled",
    EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED: "failed",
}


def _time(event: HistoryEvent) -> datetime:
    return event.event_time.ToDatetime(tzinfo=UTC)


async def timeline(client: Client, run: RunRecord) -> Timeline:
    """``run``'s steps from its workflow's history (the latest execution: a resumed run's reset one)."""
    reader = _Reader(client)
    count = 0
    try:
        async for event in client.get_workflow_handle(run.workflow_id).fetch_history_events():
            count += 1
            await reader.read(event)
    except (RPCError, RuntimeError) as error:  # a lazy client's first connection fails as a RuntimeError
        if isinstance(error, RPCError) and error.status == RPCStatusCode.NOT_FOUND:
            # Never started in Temporal (pending, expired) or past the namespace's retention.
            return Timeline(run_id=run.id, workflow_id=run.workflow_id, events=0, steps=[])
        if is_unavailable(error):
            raise TemporalUnavailableError.of(error) from error
        raise
    steps = reader.steps
    return Timeline(
        run_id=run.id, workflow_id=run.workflow_id, events=count, steps=steps[:MAX_STEPS],
        truncated=len(steps) > MAX_STEPS,
    )  # fmt: skip
