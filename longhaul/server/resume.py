"""Resume a failed run from the step that failed, on the code running now: a Temporal reset.

The run's workflow is reset to the workflow task that started the failing step (an activity, a local
activity, or the workflow's own code in its last task). Temporal keeps the history up to that task and runs
it again with the current code, so every step completed before it is *replayed* from history, not done
again; the failing step runs anew. What completed inside that task runs again too: local activities (they
run within the workflow task that records them) and activities completed beside the failed one; every
activity is idempotent (its operation id finds the earlier work), so their effects happen once, and the
run's log names them.

What a reset cannot make right is a step that ran *after* the failure: a compensation (a refund, a stock
release) or a notice of the failure. Its effect happened, but the reset history forgets it, so the resumed
run would go on as if it had not (charging an order whose stock was released). Such runs are refused with
the steps named; a replay (a new run from the start) is the way for them. longhaul's own bookkeeping
(run-record updates, announcements, waitpoint rows) is idempotent and exempt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory
from temporalio.service import RPCError

from longhaul.models import RunRecord, RunStatus, RunUpdate
from longhaul.server.envelopes import ConflictError, TemporalUnavailableError
from longhaul.server.service import RunService
from longhaul.temporal import is_unavailable

LOCAL_ACTIVITY_MARKER = "core_local_activity"
# Steps that may run after a failure without making a reset wrong: idempotent records of the run itself.
BOOKKEEPING = frozenset({"apply_run_updates", "emit_event", "waitpoints.create", "waitpoints.time_out"})
_FAILED_ACTIVITY = (EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED, EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT)


@dataclass(frozen=True)
class ResumePoint:
    """Where a failed execution resumes: the workflow task (its completed event) that started the failed
    step, and what that step was."""

    workflow_task_completed: int
    step: str
    again: tuple[str, ...] = ()  # completed steps of that workflow task (or after it) that run again


def _local_activity_type(event: HistoryEvent) -> str:
    data = event.marker_recorded_event_attributes.details["data"].payloads
    return str(json.loads(data[0].data).get("activity_type", "?")) if data else "?"


def _local_activity(event: HistoryEvent, *, failed: bool) -> bool:
    """Whether ``event`` records a local activity that failed (``failed``) or completed."""
    attributes = event.marker_recorded_event_attributes
    return (
        event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and attributes.marker_name == LOCAL_ACTIVITY_MARKER
        and attributes.HasField("failure") == failed
    )


def _completed_step(event: HistoryEvent, by_id: dict[int, HistoryEvent]) -> str | None:
    """The step ``event`` records as done (an activity's or a local activity's type), if it is one."""
    if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
        scheduled = by_id[event.activity_task_completed_event_attributes.scheduled_event_id]
        return str(scheduled.activity_task_scheduled_event_attributes.activity_type.name)
    return _local_activity_type(event) if _local_activity(event, failed=False) else None


def resume_point(history: WorkflowHistory) -> ResumePoint:
    """Where the failed execution of ``history`` resumes; ConflictError if it cannot resume safely."""
    events = list(history.events)
    by_id = {event.event_id: event for event in events}
    failed = next(
        (e for e in events if e.event_type in _FAILED_ACTIVITY or _local_activity(e, failed=True)), None
    )
    if failed is None:  # the workflow's own code failed: its last task runs again
        tasks = [e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED]
        if not tasks:
            raise ConflictError("the run failed before its workflow ran any step: nothing to resume from")
        point = ResumePoint(tasks[-1].event_id, "the workflow's code")
    elif failed.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
        task = failed.marker_recorded_event_attributes.workflow_task_completed_event_id
        point = ResumePoint(task, f"local activity {_local_activity_type(failed)}")
    else:
        attributes = (
            failed.activity_task_failed_event_attributes
            if failed.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
            else failed.activity_task_timed_out_event_attributes
        )
        scheduled = by_id[attributes.scheduled_event_id].activity_task_scheduled_event_attributes
        point = ResumePoint(
            scheduled.workflow_task_completed_event_id, f"activity {scheduled.activity_type.name}"
        )
    failed_at = failed.event_id if failed is not None else events[-1].event_id
    reactions = _steps_done(events[failed_at:], by_id)
    if reactions:
        raise ConflictError(
            f"cannot resume from {point.step}: steps ran after the failure ({', '.join(reactions)}), and a "
            "resumed run would go on as if they had not; replay the run instead (a new run from the start)"
        )
    # Events after the reset point are dropped: steps completed there (local activities run inside the
    # task that started the failed step; parallel activities) run again, and find their earlier work.
    again = _steps_done([e for e in events if point.workflow_task_completed < e.event_id < failed_at], by_id)
    return ResumePoint(point.workflow_task_completed, point.step, tuple(again))


def _steps_done(events: list[HistoryEvent], by_id: dict[int, HistoryEvent]) -> list[str]:
    """The steps ``events`` record as done, longhaul's bookkeeping aside, in order, once each."""
    done = (_completed_step(event, by_id) for event in events)
    return list(dict.fromkeys(step for step in done if step and step not in BOOKKEEPING))


async def why_not_resume(service: RunService, run: RunRecord) -> str | None:
    """Why resuming the failed ``run`` cannot help, as :func:`resume` would refuse it (None: it can; a
    run that is not failed, or whose history Temporal cannot give now, has no answer here)."""
    if run.status != RunStatus.FAILED:
        return None
    try:
        resume_point(await service.client.get_workflow_handle(run.workflow_id).fetch_history())
    except ConflictError as refused:
        return str(refused)
    except (RPCError, RuntimeError):
        return None
    return None


async def resume(service: RunService, run_id: str, *, tenant: str) -> RunRecord:
    """Resume the failed run ``run_id`` from its failed step; its record is running again at once."""
    run = await service.get(run_id, tenant=tenant)
    if run.status != RunStatus.FAILED:
        raise ConflictError(f"run '{run_id}' is {run.status}; only failed runs resume (or replay it)")
    handle = service.client.get_workflow_handle(run.workflow_id)
    try:
        description = await handle.describe()
        history = await handle.fetch_history()
    except (RPCError, RuntimeError) as error:
        if is_unavailable(error):
            raise TemporalUnavailableError.of(error) from error
        raise
    if description.status != WorkflowExecutionStatus.FAILED:
        status = description.status.name.lower() if description.status else "unknown"
        raise ConflictError(f"run '{run_id}' is {status} in Temporal, not failed: nothing to resume")
    point = resume_point(history)
    again = f"; run again, idempotent: {', '.join(point.again)}" if point.again else ""
    how = f"Temporal reset to event {point.workflow_task_completed} of execution {description.run_id}"
    reopened = RunUpdate(run_id=run_id, log=f"resuming from {point.step} ({how}{again})")
    if not await service.store.reopen(reopened, stage=f"resuming from {point.step}"):
        raise ConflictError(f"run '{run_id}' is being resumed already")
    try:
        await _reset(service.client, run.workflow_id, description.run_id, point, run_id)
    except Exception as error:
        undone = RunUpdate(run_id=run_id, status=RunStatus.FAILED, error=run.error, stage=run.stage,
                           log=f"resume failed: {error}", log_level="error")  # fmt: skip
        await service.store.apply(undone, op_id=f"resume/{description.run_id}/undo")
        raise
    return await service.get(run_id, tenant=tenant)


async def _reset(client: Client, workflow_id: str, execution: str, point: ResumePoint, run_id: str) -> None:
    await client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id, run_id=execution),
            reason=f"longhaul: resume run {run_id} from {point.step}",
            workflow_task_finish_event_id=point.workflow_task_completed,
            request_id=f"resume/{execution}",  # the same failed execution resumes once
        ),
        retry=True,
    )
