"""longhaul's own workflows and what every worker runs besides the pipelines: run-record updates and
events emitted by workflows (activities), the engine's tables, bulk actions on runs (the event
``longhaul.bulk.requested``), and the sweep that repairs run records whose workflow closed or never
started (a schedule). The catalog always includes :data:`LONGHAUL`."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from longhaul.activities.bulk import BULK_REQUESTED
    from longhaul.activities.children import ChildActivities
    from longhaul.activities.events import EventActivities
    from longhaul.activities.maintenance import (
        MaintenanceActivities,
        ReconcileReport,
        ReconcileRequest,
        longhaul_activities,
    )
    from longhaul.activities.runs import RunActivities
    from longhaul.alerts import AlertDeliveryRow, AlertDestinationRow
    from longhaul.config import Settings
    from longhaul.dead_letters import DeadLetterRow
    from longhaul.keys import ApiKeyRow
    from longhaul.queue import LeaseRow, RunSlotRow
    from longhaul.records import RunLogRow, RunRow, RunStepRow, RunTagRow
    from longhaul.storage.schedules import TenantScheduleRow
    from longhaul.waitpoints import WaitpointRow

from longhaul.workflows import registry
from longhaul.workflows.bulk import BulkActionWorkflow
from longhaul.workflows.pipeline import Pipeline, Subscription, TaskQueue
from longhaul.workflows.scheduled import TenantScheduleWorkflow
from longhaul.workflows.schedules import ScheduleDecl
from longhaul.workflows.tracking import tracked


class ReconcileInput(BaseModel):
    grace_seconds: float = 120


@registry.defn(name="reconcile-runs")
class ReconcileWorkflow:
    """Repairs run records stuck in queued/running whose Temporal workflow has closed or never existed."""

    @workflow.run
    async def run(self, job: ReconcileInput) -> ReconcileReport:
        return await tracked(self._sweep(job))

    async def _sweep(self, job: ReconcileInput) -> ReconcileReport:
        return await workflow.execute_activity_method(
            MaintenanceActivities.reconcile,
            ReconcileRequest(grace_seconds=job.grace_seconds),
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(minutes=1),
            summary="reconcile run records",
        )


def _schedules(settings: Settings) -> list[ScheduleDecl]:
    return [
        ScheduleDecl(
            id="reconcile-runs",
            workflow=ReconcileWorkflow,
            input=ReconcileInput(grace_seconds=settings.reconcile_grace_seconds),
            every=timedelta(minutes=settings.reconcile_every_minutes),
            note="repairs run records whose workflow closed or never started",
        )
    ]


LONGHAUL = Pipeline(
    name="longhaul",
    entries=(Subscription(BULK_REQUESTED, BulkActionWorkflow),),
    workflows=(ReconcileWorkflow, TenantScheduleWorkflow),
    queues=(TaskQueue(longhaul_activities),),
    # run-queue and record reads and writes
    short_steps=(
        EventActivities.emit_event,
        RunActivities.open_runs,
        ChildActivities.trigger,
        ChildActivities.cancel,
    ),
    tables=(
        RunRow,
        RunTagRow,
        RunLogRow,
        RunStepRow,
        RunSlotRow,
        LeaseRow,
        ApiKeyRow,
        DeadLetterRow,
        WaitpointRow,
        AlertDestinationRow,
        AlertDeliveryRow,
        TenantScheduleRow,
    ),
    schedules=_schedules,
)
