"""longhaul's own activities, which every worker runs: run-record updates from workflows, events emitted by
workflows, waitpoint tokens, bulk actions, and the sweep that repairs run records whose workflow closed
without writing them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from longhaul.activities.bulk import BulkActivities
from longhaul.activities.children import ChildActivities
from longhaul.activities.events import EventActivities
from longhaul.activities.resources import Resources
from longhaul.activities.runs import RunActivities
from longhaul.activities.waitpoints import WaitpointActivities
from longhaul.db import utcnow
from longhaul.models import RunStatus, RunUpdate
from longhaul.storage import RunStore


class ReconcileRequest(BaseModel):
    grace_seconds: float
    limit: int = 500


class Repair(BaseModel):
    run_id: str
    workflow_id: str
    was: RunStatus
    now: RunStatus
    reason: str


class ReconcileReport(BaseModel):
    checked: int
    repaired: list[Repair] = Field(default_factory=list)


# What a closed Temporal execution means for a run record that still says queued/running.
_CLOSED = {
    WorkflowExecutionStatus.COMPLETED: RunStatus.COMPLETED,
    WorkflowExecutionStatus.FAILED: RunStatus.FAILED,
    WorkflowExecutionStatus.CANCELED: RunStatus.CANCELLED,
    WorkflowExecutionStatus.TERMINATED: RunStatus.FAILED,
    WorkflowExecutionStatus.TIMED_OUT: RunStatus.TIMED_OUT,
}
_CLOSED_STATUS = {int(status): status for status in _CLOSED}


class MaintenanceActivities:
    def __init__(self, runs: RunStore, client: Client) -> None:
        self.runs = runs
        self.client = client

    @activity.defn(name="runs.reconcile")
    async def reconcile(self, request: ReconcileRequest) -> ReconcileReport:
        """Find run records stuck in queued/running and set them to what Temporal says happened."""
        stuck = await self.runs.stuck(utcnow() - timedelta(seconds=request.grace_seconds), request.limit)
        report = ReconcileReport(checked=len(stuck))
        for run in stuck:
            repair = await self._repair_of(run.id, run.workflow_id, run.status)
            if repair is None:
                continue
            change = RunUpdate(
                run_id=run.id,
                status=repair.now,
                stage=repair.now,
                error=None if repair.now == RunStatus.COMPLETED else repair.reason,
                log=f"reconciled: {repair.reason}",
            )
            if await self.runs.apply(change, op_id=f"reconcile/{activity.info().workflow_run_id}"):
                report.repaired.append(repair)
            activity.heartbeat(run.id)
        return report

    async def _repair_of(self, run_id: str, workflow_id: str, was: RunStatus) -> Repair | None:
        # The raw description: the SDK's describe() cannot read the status of a paused workflow (8, newer
        # than its enum), and a run paused in the Temporal UI may be among the stuck.
        request = DescribeWorkflowExecutionRequest(
            namespace=self.client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)
        )
        try:
            description = await self.client.workflow_service.describe_workflow_execution(request, retry=True)
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            return Repair(
                run_id=run_id, workflow_id=workflow_id, was=was, now=RunStatus.FAILED,
                reason="its workflow does not exist in Temporal (never started, or deleted by retention)",
            )  # fmt: skip
        status = _CLOSED_STATUS.get(description.workflow_execution_info.status)
        if status is None:
            return None  # still running, paused, or continued as new: nothing to repair
        return Repair(
            run_id=run_id, workflow_id=workflow_id, was=was, now=_CLOSED[status],
            reason=f"its workflow is {status.name.lower()} in Temporal",
        )  # fmt: skip


def longhaul_activities(resources: Resources) -> list[Callable[..., Any]]:
    """The activities of longhaul itself, on the main task queue of every worker."""
    maintenance = MaintenanceActivities(resources.store, resources.client)
    waitpoints = WaitpointActivities(resources.store.waitpoints, resources.settings)
    bulk = BulkActivities(resources.store, resources.act)
    runs = RunActivities(resources.store, resources.settings.worker_version)
    children = ChildActivities(resources.children)
    return [
        bulk.count,
        bulk.act_page,
        waitpoints.create,
        waitpoints.time_out,
        runs.apply_run_updates,
        runs.open_runs,
        EventActivities(resources.emit).emit_event,
        children.trigger,
        children.cancel,
        maintenance.reconcile,
    ]
