"""Pause and unpause one run.

A run no dispatcher has taken yet is held in the run queue: it stays pending, its reason saying who paused
it, and no dispatcher claims it until it is unpaused (its TTL still runs). A started run is paused in
Temporal (the server's workflow pause, ``PauseWorkflowExecution``): no workflow task or activity of it is
dispatched and its timers wait until it is unpaused; its record notes the pause. Servers before 1.29, or
with ``frontend.WorkflowPauseEnabled`` off (the embedded server longhaul starts has it on), refuse that:
the API answers 409 and the run goes on.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

from temporalio.api.workflowservice.v1 import PauseWorkflowExecutionRequest, UnpauseWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from longhaul.models import ACTIVE_STATUSES, WAITING_STATUSES, RunRecord, RunUpdate
from longhaul.queue import RunQueue
from longhaul.server.envelopes import ConflictError, TemporalUnavailableError
from longhaul.temporal import RPC_TIMEOUT, is_unavailable

if TYPE_CHECKING:
    from longhaul.server.service import RunService

_STARTING_WAIT = (0.2, 0.5, 1.0)  # a run a dispatcher is starting: its workflow exists within a moment


class NotPausableError(ConflictError):
    """The Temporal server does not pause workflows: the started run goes on."""


def paused_by(by: str, reason: str | None = None) -> str:
    """What a paused run's record says: "paused by key 3f2a… (API): waiting for the supplier"."""
    return f"paused by {by}" + (f": {reason}" if reason else "")


async def pause_workflow(client: Client, workflow_id: str, why: str) -> None:
    """Pause a started run's workflow (already paused is fine). Raises NotPausableError where the server
    does not pause workflows, TemporalUnavailableError, or RPCError NOT_FOUND (not started)."""
    request = PauseWorkflowExecutionRequest(
        namespace=client.namespace, workflow_id=workflow_id, reason=why,
        identity=client.identity, request_id=str(uuid.uuid4()),
    )  # fmt: skip
    try:
        await client.workflow_service.pause_workflow_execution(request, retry=True, timeout=RPC_TIMEOUT)
    except RPCError as error:
        if error.status == RPCStatusCode.UNIMPLEMENTED:
            raise NotPausableError(
                f"this Temporal server does not pause started workflows ({error.message}; servers 1.29+ "
                "with dynamic config frontend.WorkflowPauseEnabled=true do): the run goes on; cancel it "
                "to stop it"
            ) from error
        if error.status != RPCStatusCode.FAILED_PRECONDITION:  # "workflow is already paused"
            raise _translated(error) from error


async def unpause_workflow(client: Client, workflow_id: str, why: str) -> None:
    """Let a paused workflow go on (one not paused, or closed, is left as it is)."""
    request = UnpauseWorkflowExecutionRequest(
        namespace=client.namespace, workflow_id=workflow_id, reason=why,
        identity=client.identity, request_id=str(uuid.uuid4()),
    )  # fmt: skip
    try:
        await client.workflow_service.unpause_workflow_execution(request, retry=True, timeout=RPC_TIMEOUT)
    except RPCError as error:
        if error.status not in (RPCStatusCode.FAILED_PRECONDITION, RPCStatusCode.NOT_FOUND):
            raise _translated(error) from error


async def cancelled_while_paused(client: Client, queue: RunQueue, run: RunRecord, why: str) -> None:
    """After asking Temporal to cancel ``run``: if it is paused there, unpause it, so that it goes on to
    see its cancellation (and run its compensations) instead of waiting paused with it."""
    if run.paused_at is not None and run.status in ACTIVE_STATUSES:
        await unpause_workflow(client, run.workflow_id, why)
        await queue.mark_paused(run.id, None)


async def pause_run(
    service: RunService, run_id: str, *, tenant: str, by: str, reason: str | None = None
) -> RunRecord:
    """Pause a waiting run (held in the queue) or a started one (paused in Temporal). Pausing a paused run
    changes nothing; a closed run is a ConflictError."""
    run = await service.get(run_id, tenant=tenant)
    if run.status.terminal:
        raise ConflictError(f"run '{run_id}' is {run.status}; only a waiting or started run pauses")
    if run.paused_at is not None:
        return run
    why = paused_by(by, reason)
    if not (run.status in WAITING_STATUSES and await service.queue.pause_run(run_id, why)):
        for wait in (*_STARTING_WAIT, None):
            try:
                await pause_workflow(service.client, run.workflow_id, why)
                break
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:
                    raise
                if wait is None:  # not found for a while: a dispatcher is still starting it
                    raise ConflictError(
                        f"run '{run_id}' is being started in Temporal; try again in a moment"
                    ) from error
                await asyncio.sleep(wait)
        await service.queue.mark_paused(run_id, why)
    await service.store.apply(RunUpdate(run_id=run_id, log=why), op_id=f"pause/{uuid.uuid4().hex}")
    return await service.get(run_id, tenant=tenant)


async def unpause_run(service: RunService, run_id: str, *, tenant: str, by: str) -> RunRecord:
    """Let a paused run go on: a waiting one may be claimed again, a started one's workflow resumes."""
    run = await service.get(run_id, tenant=tenant)
    if run.paused_at is None:
        raise ConflictError(f"run '{run_id}' is not paused")
    why = f"unpaused by {by}"
    if not await service.queue.unpause_run(run_id):  # started: paused in Temporal
        await unpause_workflow(service.client, run.workflow_id, why)
        await service.queue.mark_paused(run_id, None)
    await service.store.apply(RunUpdate(run_id=run_id, log=why), op_id=f"unpause/{uuid.uuid4().hex}")
    return await service.get(run_id, tenant=tenant)


def _translated(error: RPCError) -> Exception:
    """Temporal unreachable is a 503 (TemporalUnavailableError); anything else as it came."""
    if is_unavailable(error):
        return TemporalUnavailableError(f"Temporal is unavailable: {error}")
    return error
