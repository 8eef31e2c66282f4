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

from temporalio.service import RPCError, RPCStatusCode

from longhaul.models import WAITING_STATUSES, RunRecord, RunUpdate
from longhaul.server.envelopes import ConflictError
from longhaul.server.service import RunService
from longhaul.server.workflow_pause import pause_workflow, unpause_workflow

_STARTING_WAIT = (0.2, 0.5, 1.0)  # a run a dispatcher is starting: its workflow exists within a moment


def paused_by(by: str, reason: str | None = None) -> str:
    """What a paused run's record says: "paused by key 3f2a… (API): waiting for the supplier"."""
    return f"paused by {by}" + (f": {reason}" if reason else "")


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
