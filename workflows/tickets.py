"""The ticket triage pipeline: ``ticket.created`` → normalise → classify → extract entities → find a
duplicate among the tenant's open tickets → route to a team → record; one run per ticket id.

Every stage is a short local activity with a typed result (recorded in the history, so the rules may
change without touching runs in flight), and each reports its progress. A ticket whose ``tenant`` is not
the sender's fails at once, without retry, and raises an alert (an error log line naming the run): it
means a misrouted integration, which retrying cannot fix. Storage steps are retried with a capped backoff
until they succeed, as app storage may be down for a while.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.tickets import (
        TENANT_MISMATCH,
        TICKET_CREATED,
        DuplicateRequest,
        RouteRequest,
        TicketActivities,
        TicketCreated,
        TicketRecord,
        TicketRow,
        TriageResult,
        ticket_activities,
    )

from longhaul.sdk import (
    FairShare,
    Pipeline,
    Subscription,
    TaskQueue,
    current_run_id,
    current_tenant,
    defn,
    progress,
    tracked,
)

A = TypeVar("A")
R = TypeVar("R")
STEP = timedelta(seconds=30)
STORAGE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=30)
)


@defn(name="ticket-triage")
class TicketTriageWorkflow:
    @workflow.run
    async def run(self, ticket: TicketCreated) -> TriageResult:
        return await tracked(self._triage(ticket))

    async def _triage(self, ticket: TicketCreated) -> TriageResult:
        tenant = current_tenant()
        if ticket.tenant != tenant:
            message = (
                f"ticket {ticket.ticket_id} names tenant '{ticket.tenant}' but was sent by tenant "
                f"'{tenant}': refused (check the integration that sends it)"
            )
            workflow.logger.error("ALERT %s (run %s)", message, current_run_id())
            raise ApplicationError(message, type=TENANT_MISMATCH, non_retryable=True)

        await progress(10, "normalising")
        normalised = await self._step(TicketActivities.normalise, ticket, "normalise")
        await progress(25, "classifying category and urgency")
        classification = await self._step(TicketActivities.classify, normalised, "classify")
        await progress(40, "extracting order ids, emails and SKUs")
        entities = await self._step(TicketActivities.extract, ticket, "extract entities")
        await progress(55, "looking for a duplicate among open tickets")
        duplicate = await self._step(
            TicketActivities.find_duplicate,
            DuplicateRequest(tenant=tenant, ticket_id=ticket.ticket_id, words=normalised.words),
            "find duplicate",
        )
        await progress(70, "routing")
        routing = await self._step(
            TicketActivities.route, RouteRequest(classification=classification, duplicate=duplicate), "route"
        )
        result = TriageResult(
            ticket_id=ticket.ticket_id,
            category=classification.category,
            urgency=classification.urgency,
            rules=classification.rules,
            entities=entities,
            duplicate_of=duplicate,
            team=routing.team,
            reason=routing.reason,
        )
        await progress(85, f"recording: {routing.team}")
        await self._step(
            TicketActivities.record,
            TicketRecord(
                tenant=tenant,
                run_id=current_run_id(),
                summary=ticket.summary,
                words=normalised.words,
                result=result,
            ),
            "record triage",
        )
        return result

    async def _step(
        self, activity: Callable[[TicketActivities, A], Awaitable[R]], argument: A, summary: str
    ) -> R:
        """One stage: a local activity, retried with backoff (storage may be down for a while)."""
        return await workflow.execute_local_activity_method(
            activity,
            argument,
            start_to_close_timeout=STEP,
            retry_policy=STORAGE_RETRY,
            summary=summary,
        )


TICKETS = Pipeline(
    name="tickets",
    # Tenants take turns: one customer's flood of tickets does not hold up another's triage.
    entries=(
        Subscription(
            TICKET_CREATED,
            TicketTriageWorkflow,
            key="ticket_id",
            once_per_key=True,
            fair_share=FairShare(),
        ),
    ),
    queues=(TaskQueue(ticket_activities),),
    tables=(TicketRow,),
)
