"""Child runs for workflow authors: start another pipeline's run and wait for its result.

``report = await trigger_and_wait(TranscodeWorkflow.run, TranscodeAsked(...))`` starts a run of that
workflow *through the run queue* — its subscription's concurrency, rate limits, fair share and priority
apply, as for an event sent to the API — and returns its typed output once it completes. The child's
record names its parent and root (``parent_run_id``, ``root_run_id``); the parent's page lists it.
:func:`batch_trigger_and_wait` starts several in one transaction and returns each one's outcome.

How the parent learns the outcome: the trigger (a longhaul activity) records the children and, in the
same transaction, the parent as waiting for each. When a child closes — completed, failed, cancelled,
timed out, or expired before it ever started — a dispatcher sends the parent the
:data:`~longhaul.models.CHILD_DONE_SIGNAL` with the child's status, output and error; the parent waits
for it with a condition (no polling, no timer; it survives any crash). A signal that arrives before the
wait begins is kept by Temporal until the handler is set.

Replay-safe: the children's event ids derive from the parent's workflow run and its count of triggers,
so a retried trigger reaches the same runs. Cancelling the parent cancels its open children (their
compensations run) unless the call said ``detached=True``. A child that does not complete reaches the
parent as :class:`ChildRunFailedError` (from :func:`trigger_and_wait`, or :meth:`ChildResult.unwrap`),
which the parent may catch; uncaught, it fails the parent with the child's reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar, overload

from pydantic import BaseModel, TypeAdapter, ValidationError
from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from longhaul.activities.children import CancelChildren, ChildActivities, TriggerRequest
    from longhaul.events import EventType
    from longhaul.models import CHILD_DONE_SIGNAL, ChildRun, RunStatus

from longhaul.workflows.tracking import (
    RECORD_RETRY,
    cancelled_why,
    current_run_id,
    current_tenant,
    instance_state,
    log,
)

T = TypeVar("T")
Payload = BaseModel | dict[str, Any]
TRIGGER_TIMEOUT = timedelta(minutes=2)  # validate and record the children: one run-queue transaction


class ChildRunFailedError(ApplicationError):
    """A child run that did not complete (failed, cancelled, timed out, expired before it started): its
    run id, workflow, status and reason. Non-retryable: the parent decides (catch it, or fail with it)."""

    def __init__(self, child: ChildRun) -> None:
        self.run_id = child.run_id
        self.workflow = child.workflow
        self.status = child.status
        self.reason = child.error or child.status.value
        super().__init__(
            f"child run {child.run_id} ({child.workflow}) {child.status.value}: {self.reason}",
            child.model_dump(mode="json"),
            type="ChildRunFailed",
            non_retryable=True,
        )


@dataclass(frozen=True)
class ChildResult(Generic[T]):
    """How one child run ended: ``run`` as it closed, and its output (typed) if it completed."""

    run: ChildRun
    output: T | None

    @property
    def ok(self) -> bool:
        return self.run.status == RunStatus.COMPLETED

    def unwrap(self) -> T:
        """The output; :class:`ChildRunFailedError` if the child did not complete."""
        if not self.ok:
            raise ChildRunFailedError(self.run)
        return self.output  # type: ignore[return-value]  # completed: typed as the child's output


class _Children:
    """One workflow execution's triggers: how many it made (the event ids derive from the count) and the
    children closed so far, by run id (from the signal, or closed already when triggered)."""

    def __init__(self) -> None:
        self.triggered = 0
        self.closed: dict[str, ChildRun] = {}
        workflow.set_signal_handler(CHILD_DONE_SIGNAL, self.child_done)

    def child_done(self, child: ChildRun) -> None:
        self.closed.setdefault(child.run_id, child)  # a redelivery changes nothing


_CHILDREN = "_longhaul_children"  # on the workflow instance: one per execution, rebuilt by a replay


@dataclass(frozen=True)
class _Target:
    """What a trigger names: an event, a workflow, or both; and the child's output type, where known."""

    event: str | None
    workflow: str | None
    output: Any

    @classmethod
    def of(cls, target: Any, event: EventType | str | None, output: Any) -> _Target:
        if isinstance(target, EventType | str):
            return cls(_event_name(target), None, output)
        definition = workflow._Definition.from_run_fn(target) or (
            workflow._Definition.from_class(target) if isinstance(target, type) else None
        )
        if definition is None or definition.name is None:
            raise TypeError(f"{target!r} is neither an event nor a workflow's run method (or class)")
        return cls(_event_name(event), definition.name, output or definition.ret_type)

    @property
    def named(self) -> str:
        return self.workflow or self.event or "?"


def _event_name(event: EventType | str | None) -> str | None:
    return event.name if isinstance(event, EventType) else event


@overload
async def trigger_and_wait(
    target: Callable[[Any, Any], Awaitable[T]] | type,
    payload: Payload,
    *,
    event: EventType | str | None = None,
    output: None = None,
    detached: bool = False,
    tags: Sequence[str] = (),
) -> T: ...


@overload
async def trigger_and_wait(
    target: EventType | str,
    payload: Payload,
    *,
    event: None = None,
    output: type[T],
    detached: bool = False,
    tags: Sequence[str] = (),
) -> T: ...


@overload
async def trigger_and_wait(
    target: EventType | str,
    payload: Payload,
    *,
    event: None = None,
    output: None = None,
    detached: bool = False,
    tags: Sequence[str] = (),
) -> Any: ...


async def trigger_and_wait(
    target: Any,
    payload: Payload,
    *,
    event: EventType | str | None = None,
    output: Any = None,
    detached: bool = False,
    tags: Sequence[str] = (),
) -> Any:
    """Start a child run and return its output once it completes.

    ``target``: a workflow's run method (``VideoWorkflow.run``: its output comes back typed) or class,
    or an event (``EventType`` or name) that one subscription takes (``output``: the type to read its
    output as). ``event`` names the event where the workflow subscribes to more than one. ``detached``:
    cancelling this run does not cancel the child. ``tags``: the child's. Raises
    :class:`ChildRunFailedError` if the child does not complete."""
    [result] = await _trigger(_Target.of(target, event, output), [payload], detached, tags)
    return result.unwrap()


async def batch_trigger_and_wait(
    target: Any,
    payloads: Sequence[Payload],
    *,
    event: EventType | str | None = None,
    output: Any = None,
    detached: bool = False,
    tags: Sequence[str] = (),
) -> list[ChildResult[Any]]:
    """Start a child run per payload (in one transaction), wait until every one has closed, and return
    each one's outcome in the payloads' order (``result.ok``, ``result.output``, ``result.unwrap()``):
    one child's failure does not stop the others. Arguments as :func:`trigger_and_wait`."""
    return await _trigger(_Target.of(target, event, output), payloads, detached, tags)


async def _trigger(
    target: _Target, payloads: Sequence[Payload], detached: bool, tags: Sequence[str]
) -> list[ChildResult[Any]]:
    children = instance_state(_CHILDREN, _Children)
    children.triggered += 1
    # The Temporal run's id keeps a continued-as-new or retried parent's triggers apart from earlier ones.
    prefix = f"{current_run_id()}.child-{workflow.info().run_id[:8]}-{children.triggered}"
    event_ids = [prefix] if len(payloads) == 1 else [f"{prefix}.{i}" for i in range(1, len(payloads) + 1)]
    request = TriggerRequest(
        parent_run_id=current_run_id(),
        tenant=current_tenant(),
        event=target.event,
        workflow=target.workflow,
        payloads=[p.model_dump(mode="json") if isinstance(p, BaseModel) else p for p in payloads],
        event_ids=event_ids,
        tags=list(tags),
    )
    # Shielded: cancelling the parent meanwhile lets the trigger finish, so what it made is known (and
    # cancelled with the parent).
    recording = workflow.start_activity_method(
        ChildActivities.trigger,
        request,
        start_to_close_timeout=TRIGGER_TIMEOUT,
        retry_policy=RECORD_RETRY,
        summary=f"trigger {len(payloads)} run(s) of {target.named}",
    )
    try:
        runs = await asyncio.shield(recording)
        children.closed.update({run.run_id: run for run in runs if run.status.terminal})
        await log(f"started {len(runs)} child run(s) of {target.named}: {', '.join(r.run_id for r in runs)}")
        await workflow.wait_condition(lambda: all(run.run_id in children.closed for run in runs))
    except asyncio.CancelledError:
        await workflow.wait([recording])
        if not detached:
            reason = f"its parent run {current_run_id()} was {cancelled_why()}"
            await _cancel(CancelChildren(parent_run_id=current_run_id(), event_ids=event_ids, reason=reason))
        raise
    return [_result(target, children.closed[run.run_id]) for run in runs]


async def _cancel(request: CancelChildren) -> None:
    await workflow.execute_activity_method(
        ChildActivities.cancel,
        request,
        start_to_close_timeout=TRIGGER_TIMEOUT,
        retry_policy=RECORD_RETRY,
        summary=f"cancel {len(request.event_ids)} child run(s)",
    )


def _result(target: _Target, child: ChildRun) -> ChildResult[Any]:
    if child.status != RunStatus.COMPLETED or target.output in (None, Any):
        return ChildResult(run=child, output=child.output)
    try:
        return ChildResult(run=child, output=TypeAdapter(target.output).validate_python(child.output))
    except ValidationError as error:  # the child's workflow changed its output since this code was written
        raise ApplicationError(
            f"child run {child.run_id} ({child.workflow}): its output does not fit "
            f"{getattr(target.output, '__name__', target.output)}: {error}",
            type="ChildOutputInvalid",
            non_retryable=True,
        ) from None
