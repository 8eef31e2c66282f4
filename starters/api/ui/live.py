"""Live runs for the dashboard: one server-sent event stream per page, for the runs it shows that have
not finished, signed in by the session cookie (EventSource sends cookies, not headers)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from longhaul.models import RunRecord
from longhaul.storage import RunFilter
from starters.api.deps import Service
from starters.api.realtime import polled, sse
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
    run: Annotated[list[str], Query(min_length=1, max_length=MAX_FOLLOWED)],
) -> StreamingResponse:
    """``run`` events whenever one of the runs changes, each run until it finishes; then ``end``."""
    following = set(run)
    sent: dict[str, dict[str, Any]] = {}

    async def poll() -> tuple[list[str], bool]:
        where = RunFilter(tenant=caller.tenant, ids=tuple(sorted(following)))
        page = await service.store.list(where, limit=len(following))
        events = []
        for record in await service.explain(page.runs):
            if sent.get(record.id) != (now := shown(record)):
                sent[record.id] = now
                events.append(f"event: run\ndata: {json.dumps(now)}\n\n")
            if record.status.terminal:
                following.discard(record.id)
        following.intersection_update({record.id for record in page.runs})  # another tenant's: none
        if not following:
            events.append("event: end\ndata: {}\n\n")
        return events, not following

    return sse(polled(request, poll))
