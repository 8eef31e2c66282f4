"""Realtime: runs streamed as server-sent events — one run, or every run with a tag — to API keys, and to
browsers holding a public access token (read-only, expiring, scoped to one run or one tag), which the
backend mints here with its API key."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from longhaul.access import PREFIX, AccessScope, AccessTokenRequest, InvalidAccessTokenError, mint, verify
from longhaul.api.changes import RunChanges
from longhaul.api.deps import ERRORS, JSON_BODY, RUN_PATH, Service, Tenant, Waitpoints, current_caller
from longhaul.db import utcnow
from longhaul.models import TAG_PATTERN, WAITING_STATUSES, AccessToken, RunRecord
from longhaul.server.service import RunService
from longhaul.storage import RunStore

router = APIRouter(tags=["realtime"])

QUIET_SECONDS = 1.0  # how often a stream whose runs did not change explains its waiting ones again
STREAM_KEEPALIVE_SECONDS = 15.0
TAG_STREAM_BATCH = 200  # runs a tag stream sends first (those changed last)
TAG_STREAM_REMEMBERS = 10_000  # runs whose last state a tag stream keeps, not to send it twice
# What a public access token does not show of a run: what it was given (its input) and the trace of the
# request that sent it. The rest keeps its place, so a token's stream parses as run records too.
HIDDEN_FROM_TOKENS: dict[str, Any] = {"input": None, "traceparent": None}
STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}},
    **ERRORS,
    401: {"description": "No API key or access token, or an invalid, expired one"},
    403: {"description": "The access token is scoped to another run or tag"},
}


@dataclass(frozen=True)
class Viewer:
    """Who watches: an API key's tenant (``scope`` None: all its runs), or a public access token."""

    tenant: str
    scope: AccessScope | None = None

    def may_see(self, run: RunRecord) -> bool:
        return self.scope is None or self.scope.allows(run.id, run.tags)

    async def visible(self, store: RunStore, run_id: str) -> RunRecord:
        """The run, if this viewer may watch it; else a 404 (before any stream starts)."""
        run = await store.get(run_id, tenant=self.tenant, logs=False)
        if run is None or not self.may_see(run):
            raise HTTPException(status_code=404, detail=f"no run '{run_id}'")
        return run

    def shown(self, run: RunRecord) -> str:
        return (run.model_copy(update=HIDDEN_FROM_TOKENS) if self.scope else run).model_dump_json()


async def current_viewer(
    request: Request,
    access_token: Annotated[
        str | None, Query(description="A public access token (browsers' EventSource cannot send headers).")
    ] = None,
) -> Viewer:
    header = request.headers.get("authorization", "")
    bearer = header[7:].strip() if header.lower().startswith("bearer ") else ""
    presented = access_token or (bearer if bearer.startswith(PREFIX) else None)
    if presented is None:
        caller = await current_caller(request)
        return Viewer(caller.tenant)
    try:
        scope = verify(request.app.state.waitpoints.key, presented)
    except InvalidAccessTokenError as error:
        raise HTTPException(status_code=401, detail=str(error)) from error
    return Viewer(scope.tenant, scope)


ViewerOf = Annotated[Viewer, Depends(current_viewer)]


@router.post(
    "/api/access-tokens",
    status_code=201,
    response_model=AccessToken,
    responses=ERRORS,
    dependencies=JSON_BODY,
)
async def create_access_token(
    asked: AccessTokenRequest, request: Request, service: Service, waitpoints: Waitpoints, tenant: Tenant
) -> AccessToken:
    """Mint a public access token for a browser: it can stream one run, or the runs with a tag, of this
    key's tenant until it expires, and do nothing else."""
    if asked.run_id is not None:
        await service.get(asked.run_id, tenant=tenant)  # 404 for an unknown run or another tenant's
    expires_at = (utcnow() + timedelta(seconds=asked.ttl_seconds)).replace(microsecond=0)
    scope = AccessScope(tenant=tenant, run_id=asked.run_id, tag=asked.tag, expires_at=expires_at)
    token = mint(waitpoints.key, scope)  # the deployment's signing key, read once
    base = str(request.base_url).rstrip("/")
    path = f"/api/runs/{asked.run_id}/stream" if asked.run_id else f"/api/runs/stream?tag={asked.tag}"
    separator = "&" if "?" in path else "?"
    scoped = f"run={asked.run_id}" if asked.run_id else f"tag={asked.tag}"
    return AccessToken(
        token=token,
        expires_at=expires_at,
        run_id=asked.run_id,
        tag=asked.tag,
        stream_url=f"{base}{path}{separator}access_token={token}",
        page_url=f"{base}/examples/realtime.html#{scoped}&token={token}",
    )


@router.get("/api/runs/stream", response_class=StreamingResponse, responses=STREAM_RESPONSES)
async def stream_tagged_runs(
    request: Request,
    service: Service,
    viewer: ViewerOf,
    tag: Annotated[str, Query(min_length=1, max_length=100, pattern=TAG_PATTERN)],
) -> StreamingResponse:
    """Server-sent events: ``run`` with a run's record whenever a run with ``tag`` starts or changes
    (first the tag's most recently changed runs), until the client leaves or its token expires."""
    if viewer.scope is not None and viewer.scope.tag != tag:
        scoped = f"run {viewer.scope.run_id}" if viewer.scope.run_id else f"tag {viewer.scope.tag}"
        raise HTTPException(status_code=403, detail=f"this access token watches {scoped} only")
    return sse(expiring(viewer, _tag_events(request, service, viewer, tag)))


@router.get(RUN_PATH + "/stream", response_class=StreamingResponse, responses=STREAM_RESPONSES)
async def stream_run(run_id: str, request: Request, service: Service, viewer: ViewerOf) -> StreamingResponse:
    """Server-sent events: ``run`` with the record whenever status, progress, stage or metadata change, then
    ``end`` once the run has finished."""
    await viewer.visible(service.store, run_id)
    return sse(expiring(viewer, _run_events(request, service, viewer, run_id)))


def sse(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _snapshot(run: RunRecord) -> tuple[Any, ...]:
    return (run.status, run.pending_reason, run.progress, run.stage, run.error, run.metadata)


async def expiring(viewer: Viewer, events: AsyncIterator[str]) -> AsyncIterator[str]:
    """``events`` until the viewer's token expires: then ``expired``, and the stream ends."""
    async for event in events:
        if viewer.scope is not None and utcnow() >= viewer.scope.expires_at:
            expired = json.dumps({"expired_at": viewer.scope.expires_at.isoformat()})
            yield f"event: expired\ndata: {expired}\n\n"
            return
        yield event


Emitted = tuple[list[str], bool]  # events to send, and whether the stream is done


@dataclass
class Follower:
    """What a stream does: the runs it ``wants``; its ``first`` events; its events when some of them
    changed; and when nothing did for a while (``quiet``: a waiting run's reason to wait can change
    while its record does not, so the runs still waiting are explained again)."""

    wants: Callable[[RunRecord], bool]
    first: Callable[[], Awaitable[Emitted]]
    changed: Callable[[list[RunRecord]], Awaitable[Emitted]]
    quiet: Callable[[], Awaitable[Emitted]]


async def followed(request: Request, follower: Follower) -> AsyncIterator[str]:
    """The events of ``follower`` (and a keep-alive comment when quiet) until it is done or the client
    leaves. Changes come from the process's one poller (:mod:`longhaul.api.changes`)."""
    changes: RunChanges = request.app.state.changes
    async with changes.subscribe(follower.wants) as subscription:
        events, done = await follower.first()
        last_sent = time.monotonic()
        for event in events:
            yield event
        while not done and not await request.is_disconnected():
            changed = await subscription.next(QUIET_SECONDS)
            events, done = await (follower.changed(changed) if changed else follower.quiet())
            if events:
                last_sent = time.monotonic()
                for event in events:
                    yield event
            elif time.monotonic() - last_sent > STREAM_KEEPALIVE_SECONDS:
                last_sent = time.monotonic()
                yield ": keep-alive\n\n"


def _run_events(request: Request, service: RunService, viewer: Viewer, run_id: str) -> AsyncIterator[str]:
    last: dict[str, RunRecord] = {}  # the record sent last (explained)

    async def emit(found: RunRecord | None) -> Emitted:
        if found is None:
            return [], True
        [run] = await service.explain([found])
        events = []
        if run_id not in last or _snapshot(last[run_id]) != _snapshot(run):
            last[run_id] = run
            events.append(f"event: run\ndata: {viewer.shown(run)}\n\n")
        if run.status.terminal:
            events.append(f"event: end\ndata: {json.dumps({'status': run.status})}\n\n")
        return events, run.status.terminal

    async def first() -> Emitted:
        return await emit(await service.store.get(run_id, tenant=viewer.tenant, logs=False))

    async def changed(runs: list[RunRecord]) -> Emitted:
        return await emit(runs[-1])

    async def quiet() -> Emitted:
        return await emit(last[run_id]) if last[run_id].status in WAITING_STATUSES else ([], False)

    wants: Callable[[RunRecord], bool] = lambda run: run.id == run_id and run.tenant == viewer.tenant  # noqa: E731
    return followed(request, Follower(wants, first, changed, quiet))


def _tag_events(request: Request, service: RunService, viewer: Viewer, tag: str) -> AsyncIterator[str]:
    sent: dict[str, tuple[Any, ...]] = {}  # run id → what was sent last, the runs changed last
    still_waiting: dict[str, RunRecord] = {}

    async def emit(found: list[RunRecord]) -> Emitted:
        events = []
        for run in await service.explain(found):
            if sent.get(run.id) != _snapshot(run):
                sent.pop(run.id, None)
                sent[run.id] = _snapshot(run)
                events.append(f"event: run\ndata: {viewer.shown(run)}\n\n")
            if run.status in WAITING_STATUSES:
                still_waiting[run.id] = run
            else:
                still_waiting.pop(run.id, None)
        for forgotten in list(sent)[: max(0, len(sent) - TAG_STREAM_REMEMBERS)]:
            del sent[forgotten]  # changed longest ago: sent again if it changes once more
        return events, False

    async def first() -> Emitted:
        return await emit(await service.store.changed_last_with_tag(viewer.tenant, tag, TAG_STREAM_BATCH))

    async def quiet() -> Emitted:
        return await emit(list(still_waiting.values()))

    wants: Callable[[RunRecord], bool] = lambda run: run.tenant == viewer.tenant and tag in run.tags  # noqa: E731
    return followed(request, Follower(wants, first, emit, quiet))
