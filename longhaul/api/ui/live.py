"""Live runs for the dashboard: one server-sent event stream per page, for the runs it shows that have
not finished and (on the list's first page) how many newer runs match its filter, signed in by the
session cookie (EventSource sends cookies, not headers)."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from longhaul.api import realtime
from longhaul.api.deps import Service
from longhaul.api.realtime import sse
from longhaul.api.runs import RunQuery, visible_run
from longhaul.api.streams import chunk_events
from longhaul.api.ui.session import SignedIn
from longhaul.keys import Caller
from longhaul.models import WAITING_STATUSES, RunRecord, StreamInfo
from longhaul.server.service import RunService
from longhaul.storage import RunFilter
from longhaul.streams import NAME_PATTERN

router = APIRouter(prefix="/ui", include_in_schema=False)
MAX_FOLLOWED = 200  # the most runs a page shows


def shown(run: RunRecord) -> dict[str, Any]:
    """What a page updates in place: status, progress, the stage line."""
    return {
        "id": run.id,
        "status": run.status.value,
        "progress": run.progress,
        "stage": run.pending_reason or run.stage or "",
    }


@router.get("/live")
async def live(
    request: Request,
    service: Service,
    caller: SignedIn,
    run: Annotated[list[str], Query(max_length=MAX_FOLLOWED)] = [],  # noqa: B006 - FastAPI copies it
    newer: Annotated[
        str | None, Query(max_length=2000, description="A runs query: count its runs newer than shown.")
    ] = None,
) -> StreamingResponse:
    """``run`` events whenever one of the runs changes, each run until it finishes (then ``end``, unless
    ``newer`` is watched too); ``newer`` events with how many runs matching that query (the list page's
    filter, from just after its newest run) have been created since the page was rendered."""
    watched = _newer_filter(newer, caller) if newer else None
    tenant = watched.tenant if watched else caller.tenant  # a list of longhaul's own runs (admin): theirs
    page = LivePage(service, tenant, set(run), watched)
    follower = realtime.Follower(page.wants, page.first, page.changed, page.quiet)
    return sse(realtime.followed(request, follower))


@router.get("/runs/{run_id}/streams")
async def run_streams(run_id: str, service: Service, caller: SignedIn) -> list[StreamInfo]:
    """The run's data streams (the run page looks for new ones while the run is open)."""
    await visible_run(service, run_id, caller)
    return await service.store.streams.streams_of(run_id)


@router.get("/runs/{run_id}/streams/{name}/live")
async def live_stream(
    run_id: str,
    name: Annotated[str, Path(pattern=NAME_PATTERN)],
    request: Request,
    service: Service,
    caller: SignedIn,
    after: Annotated[int, Query(ge=0)] = 0,
) -> StreamingResponse:
    """``chunk`` events of one of the run's data streams after ``after``, live, then ``end``."""
    await visible_run(service, run_id, caller)
    watch = request.app.state.stream_watch
    return sse(chunk_events(request, service.store, watch, run_id, name, after))


class LivePage:
    """One page's stream: the runs it shows until each finishes, and the count of newer runs matching
    its filter (``watched``)."""

    def __init__(self, service: RunService, tenant: str, runs: set[str], watched: RunFilter | None) -> None:
        self.service = service
        self.tenant = tenant
        self.shown_runs = frozenset(runs)
        self.following = set(runs)  # those not finished
        self.watched = watched
        self.sent: dict[str, dict[str, Any]] = {}
        self.waiting: dict[str, RunRecord] = {}  # not started yet: their reason may change alone
        self.counted = 0

    def wants(self, record: RunRecord) -> bool:
        return record.tenant == self.tenant and (record.id in self.following or self._newer(record))

    def _newer(self, record: RunRecord) -> bool:
        after = self.watched.created_after if self.watched else None
        return (
            self.watched is not None
            and record.id not in self.shown_runs
            and (after is None or record.created_at >= after)
        )

    async def first(self) -> realtime.Emitted:
        events: list[str] = []
        if self.following:
            where = RunFilter(tenant=self.tenant, ids=tuple(sorted(self.following)))
            page = await self.service.store.page(where, limit=len(self.following))
            self.following.intersection_update({record.id for record in page.runs})  # another tenant's: none
            events += await self._show(page.runs)
        return self._emitted(events + await self._count())

    async def changed(self, records: list[RunRecord]) -> realtime.Emitted:
        events = await self._show([r for r in records if r.id in self.following])
        if any(self._newer(record) for record in records):
            events += await self._count()
        return self._emitted(events)

    async def quiet(self) -> realtime.Emitted:
        return self._emitted(await self._show(list(self.waiting.values())))

    async def _show(self, records: list[RunRecord]) -> list[str]:
        events = []
        for record in await self.service.explain(records):
            if self.sent.get(record.id) != (now := shown(record)):
                self.sent[record.id] = now
                events.append(f"event: run\ndata: {json.dumps(now)}\n\n")
            if record.status.terminal:
                self.following.discard(record.id)
            if record.status in WAITING_STATUSES:
                self.waiting[record.id] = record
            else:
                self.waiting.pop(record.id, None)
        return events

    async def _count(self) -> list[str]:
        if self.watched is None:
            return []
        number = await self.service.store.count_matching(self.watched)
        if number == self.counted:
            return []
        self.counted = number
        return [f"event: newer\ndata: {json.dumps({'count': number})}\n\n"]

    def _emitted(self, events: list[str]) -> realtime.Emitted:
        done = not self.following and self.watched is None
        return ([*events, "event: end\ndata: {}\n\n"] if done else events), done


def _newer_filter(newer: str, caller: Caller) -> RunFilter:
    """The list page's query (its filters and the time just after its newest run), checked as the page
    checks it (a 422 naming the field)."""
    try:
        query = RunQuery.model_validate(dict(parse_qsl(newer)))
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("query", "newer", *e["loc"])} for e in error.errors(include_url=False)]
        ) from error
    return query.filter(caller)
