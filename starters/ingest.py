"""Ingest: validate an event, record its runs, start their workflows. Shared by the API and the CLI.

Order matters for durability: the ``queued`` record is written before the workflow starts, so a run
never exists in Temporal without a product record. If Temporal cannot be reached, a record this request
created is removed again, so nothing claims a run that never started; a retry then starts it. Dedupe
is enforced twice: the derived run id is the record's primary key, and the stable workflow id is started
with USE_EXISTING / REJECT_DUPLICATE, so a duplicate never runs twice even if records were lost.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from longhaul.config import Settings
from longhaul.models import DEFAULT_TENANT, RunRecord, run_id_for
from longhaul.storage import RunStore
from longhaul.temporal import EVENT, RUN_ID, TENANT, is_unavailable
from workflows.catalog import EVENTS, subscribers, workflow_name

# How long one start may wait for Temporal before the request is answered 503.
START_RPC_TIMEOUT = timedelta(seconds=10)


class UnknownEventError(LookupError):
    """No event of that name is in the catalog."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown event '{name}'; known events: {', '.join(sorted(EVENTS))}")
        self.name = name


class TemporalUnavailableError(RuntimeError):
    """Temporal could not be reached; nothing was started and no record claims a run. Retry later."""


class EventEnvelope(BaseModel):
    """What a sender posts: the payload plus an optional id that makes the send idempotent."""

    id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9._:@-]+$",
        description="Event id or idempotency key; sending the same id again returns the same runs.",
    )
    payload: dict[str, Any] = Field(default_factory=dict, description="The event's data (its schema).")


@dataclass(frozen=True)
class Accepted:
    event_id: str
    runs: list[RunRecord]


def workflow_id_for(workflow: str, tenant: str, event_id: str) -> str:
    """Stable, readable workflow id: the same event id always maps to the same workflow."""
    return f"{workflow}/{tenant}/{event_id}"


def validate_payload(event_name: str, payload: dict[str, Any]) -> BaseModel:
    """Validate ``payload`` against the event's schema; raises UnknownEventError or ValidationError."""
    event_type = EVENTS.get(event_name)
    if event_type is None:
        raise UnknownEventError(event_name)
    return event_type.schema.model_validate(payload)


class Ingestor:
    """Turns events into runs. One per process, sharing its Temporal client and run store."""

    def __init__(self, client: Client, store: RunStore, settings: Settings) -> None:
        self.client = client
        self.store = store
        self.settings = settings

    async def send(
        self, event_name: str, envelope: EventEnvelope, *, tenant: str = DEFAULT_TENANT
    ) -> Accepted:
        """Validate, record and start. Raises UnknownEventError, ValidationError, TemporalUnavailableError."""
        payload = validate_payload(event_name, envelope.payload)
        event_id = envelope.id or f"evt_{uuid.uuid4().hex}"
        runs = [
            await self._start(workflow_cls, event_name, event_id, payload, tenant)
            for workflow_cls in subscribers(event_name)
        ]
        return Accepted(event_id=event_id, runs=runs)

    async def _start(
        self, workflow_cls: type, event_name: str, event_id: str, payload: BaseModel, tenant: str
    ) -> RunRecord:
        name = workflow_name(workflow_cls)
        workflow_id = workflow_id_for(name, tenant, event_id)
        run_id = run_id_for(workflow_id)
        record, created = await self.store.create_queued(
            run_id=run_id,
            tenant=tenant,
            workflow=name,
            workflow_id=workflow_id,
            event=event_name,
            event_id=event_id,
            input=payload.model_dump(mode="json"),
        )
        try:
            await self._start_workflow(name, workflow_id, run_id, event_name, event_id, payload, tenant)
        except (RPCError, RuntimeError) as error:
            if not is_unavailable(error):
                raise
            if created:
                await self.store.delete_if_queued(run_id)
            raise TemporalUnavailableError(f"Temporal is unavailable: {error}") from error
        return record

    async def _start_workflow(
        self,
        name: str,
        workflow_id: str,
        run_id: str,
        event_name: str,
        event_id: str,
        payload: BaseModel,
        tenant: str,
    ) -> None:
        # Already started and closed: the same event was delivered before; nothing new to start.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await self.client.start_workflow(
                name,
                payload,
                id=workflow_id,
                task_queue=self.settings.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(TENANT, tenant),
                        SearchAttributePair(EVENT, event_name),
                        SearchAttributePair(RUN_ID, run_id),
                    ]
                ),
                static_summary=f"{event_name} {event_id} → {name} ({run_id})",
                rpc_timeout=START_RPC_TIMEOUT,
            )
