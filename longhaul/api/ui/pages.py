"""The dashboard's pages: runs, a run, events (a test page each), queues, schedules, overview. Each reads
what the API would and renders it; the forms that change something are in :mod:`longhaul.api.ui.actions`."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from longhaul.api import queues
from longhaul.api.deps import Schedules, Service, Waitpoints
from longhaul.api.events import list_events
from longhaul.api.runs import RunQuery, visible_run
from longhaul.api.ui.overview import overview
from longhaul.api.ui.render import page
from longhaul.api.ui.session import SignedIn
from longhaul.api.ui.testing import FormField, form_fields
from longhaul.api.ui.trace import trace_of
from longhaul.db import utcnow
from longhaul.models import REPLAYABLE_STATUSES, SYSTEM_TENANT, RunRecord, RunStatus, WaitpointStatus
from longhaul.server import schedules
from longhaul.server.envelopes import NotFoundError, TemporalUnavailableError
from longhaul.server.resume import why_not_resume
from longhaul.server.service import RunService
from longhaul.server.timeline import timeline
from longhaul.storage import RunFilter
from longhaul.tenant_schedules import Overlap

router = APIRouter(prefix="/ui", include_in_schema=False)
RECENT_SCHEDULED = 5  # runs of each schedule listed
STREAM_TAIL = 200  # chunks of each data stream the run page shows at first (then live)


@router.get("")
async def home() -> RedirectResponse:
    return RedirectResponse("/ui/runs", status_code=303)


@router.get("/runs")
async def runs_page(
    request: Request, service: Service, caller: SignedIn, query: Annotated[RunQuery, Query()]
) -> HTMLResponse:
    """Runs, newest first, filtered, a page at a time (keyset pages: as fast at run 20,000 as at 1)."""
    listed = await service.store.page(query.filter(caller), limit=query.limit, cursor=query.cursor)
    runs = await service.explain(listed.runs)
    kept = query.model_dump(exclude={"cursor"}, exclude_defaults=True, mode="json")
    older = f"?{urlencode({**kept, 'cursor': listed.next_cursor})}" if listed.next_cursor else None
    newer = None
    if query.cursor is None:  # the first page counts, live, the runs created after its newest
        after = runs[0].created_at + timedelta(microseconds=1) if runs else None
        since = max((t for t in (after, query.created_after) if t is not None), default=None)
        newer = urlencode({**kept, **({"created_after": since.isoformat()} if since else {})})
    return page(
        request, "runs.html", caller=caller, runs=runs, query=query, older=older, newer=newer,
        first_page=f"?{urlencode(kept)}" if query.cursor else None,
        live=[run.id for run in runs if not run.status.terminal],
        statuses=list(RunStatus), workflows=service.catalog.workflow_names,
    )  # fmt: skip


@router.get("/runs/{run_id}")
async def run_page(
    request: Request,
    run_id: str,
    service: Service,
    waitpoints: Waitpoints,
    caller: SignedIn,
    bookkeeping: Annotated[bool, Query(description="Draw longhaul's own steps in the trace too.")] = False,
) -> HTMLResponse:
    """A run: its record, its steps from the Temporal history (on one time axis, and as a table), its
    related runs and what can be done."""
    try:
        run = await visible_run(service, run_id, caller)
    except NotFoundError:
        return page(request, "error.html", status=404, caller=caller, title="Not found",
                    message=f"No run '{run_id}'.")  # fmt: skip
    try:
        steps, steps_problem = await timeline(service.client, run), None
    except TemporalUnavailableError as error:  # the record still shows; the steps say why they do not
        steps, steps_problem = None, str(error)
    children = await service.store.page(RunFilter(tenant=caller.tenant, children_of=run.id), limit=50)
    streams = [
        (info, await service.store.streams.read(run.id, info.name, after=max(0, info.last_seq - STREAM_TAIL)))
        for info in await service.store.streams.streams_of(run.id)
    ]
    resume_refused = await why_not_resume(service, run) if steps is not None else None  # offered if it helps
    return page(
        request, "run.html", caller=caller, run=run, timeline=steps, steps_problem=steps_problem,
        trace=trace_of(steps, utcnow(), bookkeeping=bookkeeping) if steps else None, bookkeeping=bookkeeping,
        children=children.runs, streams=streams,
        temporal_link=service.settings.temporal_ui_link(run.workflow_id),
        waitpoints=[waitpoints.shown(token) for token in run.waitpoints],
        output_fields={
            name: list(kind.output.model_fields) for name, kind in service.catalog.waitpoint_kinds.items()
        },
        decisions=_decisions(service),
        can_cancel=not run.status.terminal, can_replay=run.status in REPLAYABLE_STATUSES,
        can_resume=run.status == RunStatus.FAILED and resume_refused is None, resume_refused=resume_refused,
        waiting=WaitpointStatus.WAITING,
        message=request.query_params.get("done"),
    )  # fmt: skip


def _decisions(service: RunService) -> dict[str, str]:
    """The waitpoint kinds decided by one yes or no: a model with one boolean field, any other optional
    (its Approve / Reject buttons complete a token with that field true or false)."""
    found = {}
    for name, kind in service.catalog.waitpoint_kinds.items():
        fields = kind.output.model_fields
        flags = [field for field, info in fields.items() if info.annotation is bool]
        if len(flags) == 1 and all(
            not info.is_required() for field, info in fields.items() if field != flags[0]
        ):
            found[name] = flags[0]
    return found


@router.get("/events")
async def events_page(request: Request, service: Service, caller: SignedIn) -> HTMLResponse:
    """The event catalog, each event with a link to its test page."""
    listed = await list_events(service, caller.tenant)
    return page(
        request,
        "events.html",
        caller=caller,
        events=[e for e in listed if not e.name.startswith("longhaul.")],
    )


@router.get("/events/{name}")
async def event_page(name: str, request: Request, service: Service, caller: SignedIn) -> HTMLResponse:
    """An event's test page: a form from its schema, prefilled with the tenant's last payload of it."""
    fields = await test_form(service, name, caller.tenant)
    return page(request, "event.html", caller=caller, event=service.catalog.events[name], event_name=name,
                fields=fields, message=request.query_params.get("done"))  # fmt: skip


async def test_form(service: RunService, name: str, tenant: str) -> list[FormField]:
    """The inputs of event ``name``'s test form (NotFoundError for an unknown event)."""
    event = service.catalog.events.get(name)
    if event is None:
        raise NotFoundError(f"no event '{name}'")
    schema = event.schema.model_json_schema()
    last = (await service.store.page(RunFilter(tenant=tenant, event=name), limit=1)).runs
    example = last[0].input if last and isinstance(last[0].input, dict) else None
    if example is not None and not set(example) <= set(schema.get("properties", {})):
        example = None  # a run that events join (a batch) holds more than one payload
    return form_fields(schema, example)


@router.get("/queues")
async def queues_page(request: Request, service: Service, caller: SignedIn) -> HTMLResponse:
    listed = await queues.list_queues(service, caller)
    return page(
        request, "queues.html", caller=caller, queues=listed, message=request.query_params.get("done")
    )


@router.get("/schedules")
async def schedules_page(
    request: Request, service: Service, caller: SignedIn, tenant_schedules: Schedules
) -> HTMLResponse:
    """The tenant's own schedules (with a form for a new one); longhaul's declared ones for admin keys."""
    listed = await schedules.describe_all(service.client) if caller.admin else []
    recent = {
        info.id: await _recent(service, RunFilter(tenant=SYSTEM_TENANT, event=f"schedule:{info.id}"))
        for info in listed
    }
    own = await tenant_schedules.list(caller.tenant)
    made = {
        s.id: await _recent(service, RunFilter(tenant=caller.tenant, tag=f"schedule:{s.id}")) for s in own
    }
    return page(request, "schedules.html", caller=caller, schedules=listed, recent=recent, own=own,
                made=made, **_schedule_form(service), message=request.query_params.get("done"))  # fmt: skip


@router.get("/schedules/{schedule}")
async def schedule_page(
    schedule: str, request: Request, service: Service, caller: SignedIn, tenant_schedules: Schedules
) -> HTMLResponse:
    """One of the tenant's schedules, in a form that changes it."""
    found = await tenant_schedules.get(caller.tenant, schedule)
    made = await _made_by(service, caller.tenant, schedule)
    return page(request, "schedule.html", caller=caller, schedule=found, made=made, **_schedule_form(service),
                message=request.query_params.get("done"))  # fmt: skip


async def _recent(service: RunService, where: RunFilter) -> list[RunRecord]:
    return (await service.store.page(where, limit=RECENT_SCHEDULED)).runs


async def _made_by(service: RunService, tenant: str, schedule: str) -> list[RunRecord]:
    """The latest runs a tenant's schedule made (tagged with it)."""
    return await _recent(service, RunFilter(tenant=tenant, tag=f"schedule:{schedule}"))


def _schedule_form(service: RunService) -> dict[str, Any]:
    """What a schedule's form offers: the events a tenant may send, the overlap policies."""
    events = sorted(name for name in service.catalog.events if not name.startswith("longhaul."))
    return {"events": events, "overlaps": [overlap.value for overlap in Overlap]}


@router.get("/overview")
async def overview_page(request: Request, service: Service, caller: SignedIn) -> HTMLResponse:
    summary = await overview(service.store, caller.tenant)
    return page(request, "overview.html", caller=caller, overview=summary)
