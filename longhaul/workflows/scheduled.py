"""What a tenant schedule's firing runs (:mod:`longhaul.tenant_schedules`): the schedule's event sent for
the tenant through the run queue (so the subscriptions' flow control applies to it), then a wait for the
runs it made to close, so that the schedule's overlap policy (skip, buffer) is about the tenant's runs.

The event id is the firing workflow's id (``/`` read as ``:``), which the Temporal schedule makes of its
own id and the firing's time (``tenant:acme:nightly-2026-12-05T03:00:00Z``): a retried send is a
duplicate the queue answers with the same runs. The firing workflow has no run record of its own: the
tenant's runs (tagged ``schedule:<id>``) are what it makes.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from longhaul.workflows import registry
from longhaul.workflows.emit import EMIT_TIMEOUT

with workflow.unsafe.imports_passed_through():
    from longhaul.activities.events import EmitRequest, EventActivities
    from longhaul.activities.runs import RunActivities
    from longhaul.tenant_schedules import ScheduledEvent

FIRST_LOOK = timedelta(seconds=1)
LOOK_AT_MOST = (timedelta(minutes=1), timedelta(minutes=5))  # within the first hour, and after it


@registry.defn(name="tenant-schedule")
class TenantScheduleWorkflow:
    """One firing of a tenant schedule: send its event, wait for the runs it made."""

    @workflow.run
    async def run(self, fire: ScheduledEvent) -> list[str]:
        run_ids: list[str] = await workflow.execute_activity_method(
            EventActivities.emit_event,
            EmitRequest(
                name=fire.event,
                event_id=workflow.info().workflow_id.replace("/", ":"),  # an event id has no /
                tenant=fire.tenant,
                payload=fire.payload,
                tags=[f"schedule:{fire.schedule}"],
            ),
            start_to_close_timeout=EMIT_TIMEOUT,
            summary=f"send {fire.event} for {fire.tenant}",
        )
        if fire.wait:
            await self._until_closed(run_ids)
        return run_ids

    async def _until_closed(self, run_ids: list[str]) -> None:
        """Look at the runs with a backoff (1 s doubling to a minute, five after the first hour)."""
        began, wait = workflow.now(), FIRST_LOOK
        while run_ids := await workflow.execute_local_activity_method(
            RunActivities.open_runs, run_ids, start_to_close_timeout=timedelta(seconds=30)
        ):
            await workflow.sleep(wait)
            longest = LOOK_AT_MOST[0] if workflow.now() - began < timedelta(hours=1) else LOOK_AT_MOST[1]
            wait = min(wait * 2, longest)
