"""Run-record bookkeeping for workflow authors: ``await progress(40, "transcoding 720p")``.

Every update goes through the ``update_run`` activity (workflows never do I/O) and is mirrored in the
workflow's current details, so the Temporal UI shows the same stage and percent as the product's status
page. :func:`tracked` wraps a workflow body with the status transitions of its run record.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, CancelledError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.runs import RunActivities
    from longhaul.models import DEFAULT_TENANT, RunOrigin, RunStatus, RunUpdate, run_id_for
    from longhaul.temporal import EVENT, TENANT

T = TypeVar("T")

# App storage may be down for a while: keep retrying (no attempt limit) with a capped backoff.
_RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=20)
)
_RECORD_TIMEOUT = timedelta(seconds=30)


def current_run_id() -> str:
    """The run id of the running workflow (derived from its workflow id, like the API derives it)."""
    return run_id_for(workflow.info().workflow_id)


def current_tenant() -> str:
    """The tenant the run belongs to (its search attribute, set when it was started)."""
    return workflow.info().typed_search_attributes.get(TENANT) or DEFAULT_TENANT


def _origin() -> RunOrigin:
    """This run's identity, so the worker can create its record if no API call did (schedules)."""
    info = workflow.info()
    event = info.typed_search_attributes.get(EVENT) or "manual"
    return RunOrigin(
        tenant=current_tenant(),
        workflow=info.workflow_type,
        workflow_id=info.workflow_id,
        event=event,
        event_id=info.workflow_id.rsplit("-", 1)[-1] if event.startswith("schedule:") else info.run_id,
    )


async def _record(**fields: Any) -> None:
    await workflow.execute_activity_method(
        RunActivities.update_run,
        RunUpdate(run_id=current_run_id(), **fields),
        start_to_close_timeout=_RECORD_TIMEOUT,
        retry_policy=_RECORD_RETRY,
        summary=f"run record: {fields.get('status') or fields.get('stage') or 'update'}",
    )


async def progress(percent: int, stage: str) -> None:
    """Report progress: percent (0 to 100) and the current stage, to the run record (and its log) and
    the Temporal UI."""
    workflow.set_current_details(f"**{percent}%** {stage}")
    await _record(progress=percent, stage=stage, log=f"{percent}% {stage}")


async def log(message: str, level: str = "info") -> None:
    """Append a line to the run's log (shown with the run record)."""
    await _record(log=message, log_level=level)


def _jsonable(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def is_cancellation(error: BaseException | None) -> bool:
    """Whether ``error`` is, or was caused by, a cancellation (of the workflow or of an activity)."""
    while error is not None:
        if isinstance(error, asyncio.CancelledError | CancelledError):
            return True
        error = error.__cause__
    return False


async def tracked(body: Awaitable[T], *, final_stage: Callable[[T], str] | None = None) -> T:
    """Await ``body`` (the workflow's work) with its run record moved to running, then completed, failed
    or cancelled: ``return await tracked(self._process(event))``. ``final_stage`` names the stage a
    completed run ends in (default "completed"), e.g. an order's business outcome."""
    attempt = workflow.info().attempt
    try:
        await _record(
            status=RunStatus.RUNNING, attempt=attempt, log=f"running (attempt {attempt})", origin=_origin()
        )
        result = await body
    except (asyncio.CancelledError, FailureError) as error:
        if inspect.iscoroutine(body):
            body.close()  # cancelled before the body began: never leave it un-awaited
        if is_cancellation(error):
            workflow.set_current_details("cancelled")
            await _record(status=RunStatus.CANCELLED, stage="cancelled", error="cancelled", log="cancelled")
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
        raise
    stage = final_stage(result) if final_stage else "completed"
    workflow.set_current_details(f"**100%** {stage}")
    await _record(status=RunStatus.COMPLETED, stage=stage, output=_jsonable(result), log=stage)
    return result


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
