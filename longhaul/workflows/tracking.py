"""Run-record bookkeeping for workflow authors: ``await progress(40, "transcoding 720p")``.

Workflows never do I/O, so updates travel to the worker, which writes them to app storage. An update is
mirrored at once in the workflow's current details (the Temporal UI shows the same stage and percent as
the status page) and queued in the workflow; the queue is then delivered with no extra server round trip:

- carried in the header of the next activity the workflow starts (:class:`RunUpdatesInterceptor`; the
  worker applies them just before that activity runs), or
- if the workflow waits on something else first (a timer, a signal, a child), by one
  ``apply_run_updates`` *local* activity, run by the worker while it holds the workflow task: one marker
  event in the history, no activity task, no extra workflow task.

The final record (completed, failed, cancelled) is always written by that local activity before the
workflow closes, so a closed workflow has a final record. With a regular activity per update, the
framework-overhead benchmark measured a three-step pipeline at 0.39 of hand-written temporalio; see
docs/benchmarks.md for the measurement now. :func:`tracked` wraps a workflow body with the status
transitions of its run record.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, CancelledError, FailureError
from temporalio.worker import (
    StartActivityInput,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowOutboundInterceptor,
)

with workflow.unsafe.imports_passed_through():
    from longhaul.activities.runs import RunActivities
    from longhaul.config import task_queue_name
    from longhaul.models import (
        DEFAULT_TENANT,
        RUN_UPDATES_HEADER,
        RunOrigin,
        RunStatus,
        RunUpdate,
        RunUpdates,
        run_id_for,
    )
    from longhaul.temporal import EVENT, TASK_QUEUES_MEMO, TENANT

from longhaul.workflows.steps import as_local, runs_local

T = TypeVar("T")

# App storage may be down for a while: keep retrying (no attempt limit) with a capped backoff.
RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=20)
)
RECORD_TIMEOUT = timedelta(seconds=30)


def current_run_id() -> str:
    """The run id of the running workflow (derived from its workflow id, like the API derives it)."""
    return run_id_for(workflow.info().workflow_id)


def current_tenant() -> str:
    """The tenant the run belongs to (its search attribute, set when it was started)."""
    return workflow.info().typed_search_attributes.get(TENANT) or DEFAULT_TENANT


def task_queue(role: str) -> str:
    """The task queue of ``role`` (declared by the pipeline: :class:`longhaul.workflows.pipeline.Queue`), as
    longhaul passed it in the run's memo when it started the run; a run started without it (by hand, or
    before queues were passed) gets the name the worker polls by the same rule."""
    queues = workflow.memo_value(TASK_QUEUES_MEMO, default={}, type_hint=dict)
    name = queues.get(role) if isinstance(queues, dict) else None
    return name if isinstance(name, str) else task_queue_name(workflow.info().task_queue, role)


def _origin() -> RunOrigin:
    """This run's identity, so the worker can create its record if no API call did (schedules)."""
    info = workflow.info()
    event = info.typed_search_attributes.get(EVENT) or "manual"
    event_id = info.run_id
    if event.startswith("schedule:"):  # `<workflow>/<tenant>/<schedule>-<time>`: the server adds the time
        schedule = event.removeprefix("schedule:")
        event_id = info.workflow_id.rsplit("/", 1)[-1].removeprefix(f"{schedule}-")
    return RunOrigin(
        tenant=current_tenant(),
        workflow=info.workflow_type,
        workflow_id=info.workflow_id,
        event=event,
        event_id=event_id,
    )


class _Recorder:
    """The run updates one workflow run has queued and not yet sent, numbered in workflow order."""

    def __init__(self) -> None:
        self.pending: list[RunUpdate] = []
        self.added = 0
        self.flushing: asyncio.Task[None] | None = None

    def add(self, fields: dict[str, Any]) -> None:
        self.added += 1
        op_id = f"{workflow.info().run_id}/{self.added}"
        self.pending.append(RunUpdate(run_id=current_run_id(), op_id=op_id, **fields))
        if self.flushing is None or self.flushing.done():
            # Runs once the workflow blocks: if it started an activity by then, that carried the updates.
            self.flushing = asyncio.create_task(self.flush())

    def take(self) -> list[RunUpdate]:
        taken, self.pending = self.pending, []
        return taken

    async def flush(self) -> None:
        """Send what is queued by local activity, until nothing is (nothing if a header carried it)."""
        while self.pending:
            taken = self.take()
            await workflow.execute_local_activity_method(
                RunActivities.apply_run_updates,
                RunUpdates(updates=taken),
                start_to_close_timeout=RECORD_TIMEOUT,
                retry_policy=RECORD_RETRY,
                summary=f"run record: {taken[-1].status or taken[-1].stage or 'update'}",
            )


# The recorder lives on the workflow instance: one per execution (a replay makes a new instance), and
# reachable from the interceptor, which the sandbox may have loaded from another copy of this module.
_RECORDER = "_longhaul_run_updates"


def instance_state(name: str, make: Callable[[], T]) -> T:
    """What the helpers keep per workflow execution, on its instance (a replay makes a new instance, and
    the state with it), made by ``make`` on first use. On the instance rather than in a module, because the
    sandbox may load a helper's module more than once."""
    instance = workflow.instance()
    state: T | None = getattr(instance, name, None)
    if state is None:
        state = make()
        setattr(instance, name, state)
    return state


def _recorder() -> _Recorder:
    return instance_state(_RECORDER, _Recorder)


def queue_update(**fields: Any) -> None:
    """Queue a change to the run record (a :class:`RunUpdate` field each), delivered with the next step."""
    _recorder().add(fields)


async def _record(**fields: Any) -> None:
    """Queue ``fields`` and write everything queued now, in order (the final record)."""
    recorder = _recorder()
    if recorder.flushing is not None and not recorder.flushing.done():
        # An earlier flush first (updates are applied in workflow order); its outcome is not ours.
        await workflow.wait([recorder.flushing])
    recorder.add(fields)
    assert recorder.flushing is not None
    await recorder.flushing


def take_pending_updates() -> list[RunUpdate]:
    """The run's queued updates, now handed to an activity's header (by the interceptor)."""
    recorder = getattr(workflow.instance(), _RECORDER, None)
    return recorder.take() if recorder else []


async def progress(percent: int, stage: str) -> None:
    """Report progress: percent (0 to 100) and the current stage, to the run record (and its log) and
    the Temporal UI. Returns at once; the update travels with the workflow's next step."""
    workflow.set_current_details(f"**{percent}%** {stage}")
    queue_update(progress=percent, stage=stage, log=f"{percent}% {stage}")


async def log(message: str, level: str = "info") -> None:
    """Append a line to the run's log (shown with the run record); delivered like progress."""
    queue_update(log=message, log_level=level)


class RunUpdatesInterceptor(WorkflowInboundInterceptor):
    """Hands a workflow's queued run updates to the next activity it starts, in the activity's header
    (the worker wires this in; :class:`longhaul.activities.runs.ApplyCarriedUpdates` applies them), and
    runs the catalog's short steps as local activities (:mod:`longhaul.workflows.steps`)."""

    short_steps: frozenset[str] = frozenset()

    @classmethod
    def running(cls, short_steps: frozenset[str]) -> type[RunUpdatesInterceptor]:
        """This interceptor for a catalog whose short steps are ``short_steps`` (activity names)."""
        return type(cls.__name__, (cls,), {"short_steps": short_steps})

    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_CarryUpdates(outbound, self.short_steps))


class _CarryUpdates(WorkflowOutboundInterceptor):
    def __init__(self, next: WorkflowOutboundInterceptor, short_steps: frozenset[str]) -> None:
        super().__init__(next)
        self.short_steps = short_steps

    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
        input.headers = _with_pending_updates(input.headers)
        if runs_local(input, self.short_steps):
            return super().start_local_activity(as_local(input))
        return super().start_activity(input)

    def start_local_activity(self, input: StartLocalActivityInput) -> workflow.ActivityHandle[Any]:
        input.headers = _with_pending_updates(input.headers)
        return super().start_local_activity(input)


def _with_pending_updates(headers: Mapping[str, Payload]) -> Mapping[str, Payload]:
    updates = take_pending_updates()
    if not updates:
        return headers
    payload = workflow.payload_converter().to_payload(RunUpdates(updates=updates))
    return {**headers, RUN_UPDATES_HEADER: payload}


def _jsonable(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def is_cancellation(error: BaseException | None) -> bool:
    """Whether ``error`` is, or was caused by, a cancellation (of the workflow or of an activity)."""
    while error is not None:
        if isinstance(error, asyncio.CancelledError | CancelledError):
            return True
        error = error.__cause__
    return False


def cancelled_why() -> str:
    """Who cancelled this run and why, as the canceller told Temporal (longhaul always says:
    :func:`longhaul.models.cancellation`); a cancel from elsewhere (the Temporal UI, a parent) may not."""
    return workflow.cancellation_reason() or "cancelled (no reason given)"


async def tracked(body: Awaitable[T], *, final_stage: Callable[[T], str] | None = None) -> T:
    """Await ``body`` (the workflow's work) with its run record moved to running, then completed, failed
    or cancelled: ``return await tracked(self._process(event))``. ``final_stage`` names the stage a
    completed run ends in (default "completed"), e.g. an order's business outcome."""
    attempt = workflow.info().attempt
    try:
        queue_update(
            status=RunStatus.RUNNING, attempt=attempt, log=f"running (attempt {attempt})", origin=_origin()
        )
        result = await body
    except (asyncio.CancelledError, FailureError) as error:
        if inspect.iscoroutine(body):
            body.close()  # cancelled before the body began: never leave it un-awaited
        if is_cancellation(error):
            why = cancelled_why()
            workflow.set_current_details(why)
            await _record(status=RunStatus.CANCELLED, stage="cancelled", error=why, log=why)
            _count_outcome(RunStatus.CANCELLED)
        else:
            reason = reason_of(error)
            workflow.set_current_details(f"failed: {reason}")
            await _record(
                status=RunStatus.FAILED,
                stage="failed",
                error=reason,
                log=f"failed: {reason}",
                log_level="error",
            )
            _count_outcome(RunStatus.FAILED)
        raise
    stage = final_stage(result) if final_stage else "completed"
    workflow.set_current_details(f"**100%** {stage}")
    await _record(status=RunStatus.COMPLETED, stage=stage, output=_jsonable(result), log=stage)
    _count_outcome(RunStatus.COMPLETED)
    return result


def _count_outcome(status: RunStatus) -> None:
    """A run's outcome and duration for Prometheus (longhaul/metrics.py), counted by the workflow itself:
    the SDK drops workflow metrics while replaying, so a run is counted once however often it replays.
    The SDK labels them with namespace, task queue and workflow type."""
    meter = workflow.metric_meter()
    labels = {"status": status.value}
    meter.create_counter("longhaul_runs_finished", "Runs that reached a final status.").add(1, labels)
    seconds = (workflow.now() - workflow.info().start_time).total_seconds()
    meter.create_histogram_float(
        "longhaul_run_duration", "From the run's workflow start to its final status.", "s"
    ).record(seconds, labels)


def reason_of(error: BaseException) -> str:
    """What went wrong, for people: the first application error's message ("card declined"), else the
    innermost cause ("activity StartToClose timeout"), not the wrapper's ("activity task failed")."""
    cause: BaseException | None = error
    innermost = error
    while cause is not None:
        if isinstance(cause, ApplicationError):
            return cause.message
        innermost, cause = cause, cause.__cause__
    return str(innermost) or str(error)
