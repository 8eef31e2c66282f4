"""Events: the catalog, sending one, sending a batch; with a per-tenant ingest rate limit."""

from __future__ import annotations

import math
import time
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from longhaul.api.deps import ERRORS, JSON_BODY, Service, Tenant, ref
from longhaul.models import BatchAccepted, EventAccepted
from longhaul.server.envelopes import MAX_BATCH, BatchItem, EventEnvelope
from longhaul.server.service import Accepted

router = APIRouter(tags=["events"])


class BatchRequest(BaseModel):
    events: list[BatchItem] = Field(min_length=1, max_length=MAX_BATCH)


class EventInfo(BaseModel):
    name: str
    version: int
    starts: list[str] = Field(description="Workflows each event of this name starts.")
    signals: list[str] = Field(description="Workflows this event is delivered to as a signal.")
    json_schema: dict[str, Any] = Field(description="JSON Schema of the payload.")


class IngestLimiter:
    """Per-tenant token bucket on event ingest (per API process): ``rate`` events/s, bursts of ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.buckets: dict[str, tuple[float, float]] = {}  # tenant -> (tokens, at)

    def take(self, tenant: str, count: int = 1) -> float:
        """Take ``count`` tokens; returns 0 if allowed, else the seconds to wait before retrying."""
        now = time.monotonic()
        tokens, at = self.buckets.get(tenant, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        if tokens >= count:
            self.buckets[tenant] = (tokens - count, now)
            return 0.0
        self.buckets[tenant] = (tokens, now)
        return (count - tokens) / self.rate


def _limit_ingest(request: Request, tenant: str, count: int) -> None:
    wait = request.app.state.limiter.take(tenant, count)
    if wait:
        raise HTTPException(
            status_code=429,
            detail=f"tenant {tenant} is over its ingest rate limit; retry later",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


@router.get("/api/events", response_model=list[EventInfo])
async def list_events(service: Service, tenant: Tenant) -> list[EventInfo]:
    """The event catalog: every event's schema and what it does."""
    catalog = service.catalog
    return [
        EventInfo(
            name=name,
            version=event.version,
            starts=[s.workflow_name for s in catalog.subscribers(name)],
            signals=[r.workflow_name for r in catalog.routes_for(name)],
            json_schema=event.schema.model_json_schema(),
        )
        for name, event in sorted(catalog.events.items())
    ]


@router.post(
    "/api/events/{name}",
    status_code=202,
    response_model=EventAccepted,
    responses=ERRORS,
    dependencies=JSON_BODY,
)
async def send_event(
    name: str, envelope: EventEnvelope, request: Request, service: Service, tenant: Tenant
) -> Any:
    """Send an event: each workflow subscribed to it starts once per event id; a routed event signals
    the running workflow its key names. Sending the same id again returns the same runs."""
    _limit_ingest(request, tenant, 1)
    return _accepted(request, await service.send(name, envelope, tenant=tenant))


@router.post(
    "/api/events", status_code=202, response_model=BatchAccepted, responses=ERRORS, dependencies=JSON_BODY
)
async def send_events(batch: BatchRequest, request: Request, service: Service, tenant: Tenant) -> Any:
    """Send up to 1,000 events at once: all are validated, then recorded in one transaction (none if any
    is invalid)."""
    _limit_ingest(request, tenant, len(batch.events))
    results = await service.send_batch(batch.events, tenant=tenant)
    return BatchAccepted(results=[_accepted(request, accepted) for accepted in results])


def _accepted(request: Request, accepted: Accepted) -> EventAccepted:
    return EventAccepted(
        event_id=accepted.event_id,
        runs=[ref(request, d.run, d.via) for d in accepted.deliveries],
        filtered_out=accepted.filtered_out,
    )
