"""The server's workflow pause (``PauseWorkflowExecution``), for a started run (one run's pause:
:mod:`longhaul.server.pausing`). Servers before 1.29, or with ``frontend.WorkflowPauseEnabled`` off (the
embedded server longhaul starts has it on), refuse it: :class:`NotPausableError`."""

from __future__ import annotations

import uuid

from temporalio.api.workflowservice.v1 import PauseWorkflowExecutionRequest, UnpauseWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from longhaul.models import ACTIVE_STATUSES, RunRecord
from longhaul.queue import RunQueue
from longhaul.server.envelopes import ConflictError, TemporalUnavailableError
from longhaul.temporal import RPC_TIMEOUT, is_unavailable


class NotPausableError(ConflictError):
    """The Temporal server does not pause workflows: the started run goes on."""


async def pause_workflow(client: Client, workflow_id: str, why: str) -> None:
    """Pause a started run's workflow (already paused is fine). Raises NotPausableError where the server
    does not pause workflows, TemporalUnavailableError, or RPCError NOT_FOUND (not started)."""
    request = PauseWorkflowExecutionRequest(**_asked(client, workflow_id, why))
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
    request = UnpauseWorkflowExecutionRequest(**_asked(client, workflow_id, why))
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


def _asked(client: Client, workflow_id: str, why: str) -> dict[str, str]:
    """The fields a pause and an unpause request share."""
    return {
        "namespace": client.namespace, "workflow_id": workflow_id, "reason": why,
        "identity": client.identity, "request_id": str(uuid.uuid4()),
    }  # fmt: skip


def _translated(error: RPCError) -> Exception:
    """Temporal unreachable is a 503 (TemporalUnavailableError); anything else as it came."""
    if is_unavailable(error):
        return TemporalUnavailableError.of(error)
    return error
