"""Live runs for the dashboard: one server-sent event stream per page, for the runs it shows that have
not finished and (on the list's first page) how many newer runs match its filter, signed in by the
session cookie (EventSource sends cookies, not headers)."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from longhaul.models import RunRecord
from longhaul.storage import RunFilter
from starters.api.deps import Service
from starters.api.realtime import polled, sse
from starters.api.runs import RunQuery
from starters.api.ui.session import SignedIn

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
    following = set(run)
    watched = _newer_filter(newer, caller.tenant) if newer else None
    sent: dict[str, dict[str, Any]] = {}
    counted: list[int] = [0]

    async def poll() -> tuple[list[str], bool]:
        events = []
        if following:
            where = RunFilter(tenant=caller.tenant, ids=tuple(sorted(following)))
            page = await service.store.list(where, limit=len(following))
            for record in await service.explain(page.runs):
                if sent.get(record.id) != (now := shown(record)):
                    sent[record.id] = now
                    events.append(f"event: run\ndata: {json.dumps(now)}\n\n")
                if record.status.terminal:
                    following.discard(record.id)
            following.intersection_update({record.id for record in page.runs})  # another tenant's: none
        if watched is not None and (count := await service.store.count_matching(watched)) != counted[0]:
            counted[0] = count
            events.append(f"event: newer\ndata: {json.dumps({'count': count})}\n\n")
        done = not following and watched is None
        if done:
            events.append("event: end\ndata: {}\n\n")
        return events, done

    return sse(polled(request, poll))


def _newer_filter(newer: str, tenant: str) -> RunFilter:
    """The list page's query (its filters and the time just after its newest run), checked as the page
    checks it (a 422 naming the field)."""
    try:
        query = RunQuery.model_validate(dict(parse_qsl(newer)))
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("query", "newer", *e["loc"])} for e in error.errors(include_url=False)]
        ) from error
    return query.filter(tenant)
