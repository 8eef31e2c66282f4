"""Runs: list, read, stream (server-sent events), cancel, signal, replay."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from longhaul.models import RunPage, RunRecord, RunRef, RunStatus
from longhaul.storage import RunFilter
from starters.api.deps import ERRORS, JSON_BODY, RUN_PATH, Service, Tenant, Waitpoints, ref
from starters.service import EventEnvelope, RunService

router = APIRouter(tags=["runs"])

STREAM_POLL_SECONDS = 0.25
STREAM_KEEPALIVE_SECONDS = 15.0


@router.get("/api/runs", response_model=RunPage, responses=ERRORS)
async def list_runs(
    service: Service,
    tenant: Tenant,
    status: RunStatus | None = None,
    workflow: str | None = None,
    event: str | None = None,
    tag: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> RunPage:
    """Runs, newest first, filtered; follow ``next_cursor`` for the next page."""
    where = RunFilter(tenant=tenant, status=status, workflow=workflow, event=event, tag=tag)
    page = await service.store.list(where, limit=limit, cursor=cursor)
    return page.model_copy(update={"runs": await service.explain(page.runs)})


@router.get(RUN_PATH, response_model=RunRecord, name="get_run", responses=ERRORS)
async def get_run(run_id: str, service: Service, waitpoints: Waitpoints, tenant: Tenant) -> RunRecord:
    """A run's durable record: status, progress, stage, logs, output, error, timestamps, and its waitpoint
    tokens with their callback URLs."""
    run = await service.get(run_id, tenant=tenant)
    return run.model_copy(update={"waitpoints": [waitpoints.shown(token) for token in run.waitpoints]})


@router.get(
    "/api/runs/{run_id}/stream",
    responses={200: {"content": {"text/event-stream": {}}}, **ERRORS},
    response_class=StreamingResponse,
)
async def stream_run(run_id: str, request: Request, service: Service, tenant: Tenant) -> StreamingResponse:
    """Server-sent events: ``run`` with the record whenever status, progress, stage or metadata change, then
    ``end`` once the run has finished."""
    await service.get(run_id, tenant=tenant)  # 404 before the stream starts
    return StreamingResponse(
        _run_events(request, service, run_id, tenant),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.post("/api/runs/{run_id}/cancel", status_code=202, response_model=RunRecord, responses=ERRORS)
async def cancel_run(run_id: str, service: Service, tenant: Tenant) -> RunRecord:
    """Ask the run to stop. Its workflow runs its compensations and records ``cancelled``."""
    return await service.cancel(run_id, tenant=tenant)


@router.post(
    "/api/runs/{run_id}/signals/{signal}",
    status_code=202,
    response_model=RunRef,
    responses=ERRORS,
    dependencies=JSON_BODY,
)
async def signal_run(
    run_id: str, signal: str, envelope: EventEnvelope, request: Request, service: Service, tenant: Tenant
) -> RunRef:
    """Send a signal (human-in-the-loop, external confirmations). ``id`` makes it idempotent."""
    run = await service.signal(run_id, signal, envelope, tenant=tenant)
    return ref(request, run, "signal")


@router.post("/api/runs/{run_id}/replay", status_code=202, response_model=RunRef, responses=ERRORS)
async def replay_run(run_id: str, request: Request, service: Service, tenant: Tenant) -> RunRef:
    """Start a failed, cancelled or timed-out run again with the same input, as a new linked run."""
    return ref(request, await service.replay(run_id, tenant=tenant), "replay")


async def _run_events(request: Request, service: RunService, run_id: str, tenant: str) -> AsyncIterator[str]:
    last: tuple[Any, ...] | None = None
    last_sent = time.monotonic()
    while not await request.is_disconnected():
        found = await service.store.get(run_id, tenant=tenant, logs=False)
        if found is None:
            return
        [run] = await service.explain([found])
        snapshot = (run.status, run.pending_reason, run.progress, run.stage, run.error, run.metadata)
        if snapshot != last:
            last, last_sent = snapshot, time.monotonic()
            yield f"event: run\ndata: {run.model_dump_json()}\n\n"
        elif time.monotonic() - last_sent > STREAM_KEEPALIVE_SECONDS:
            last_sent = time.monotonic()
            yield ": keep-alive\n\n"
        if run.status.terminal:
            yield f"event: end\ndata: {json.dumps({'status': run.status})}\n\n"
            return
        await asyncio.sleep(STREAM_POLL_SECONDS)
