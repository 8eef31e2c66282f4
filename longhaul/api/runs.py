"""Runs: list, read, cancel, signal, replay (their streams: :mod:`longhaul.api.realtime`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from longhaul.api.deps import ERRORS, JSON_BODY, RUN_PATH, CallerOf, Service, Tenant, Waitpoints, ref
from longhaul.keys import Caller
from longhaul.models import SYSTEM_TENANT, TAG_PATTERN, RunPage, RunRecord, RunRef, RunStatus
from longhaul.server.envelopes import EventEnvelope, NotFoundError
from longhaul.server.pausing import pause_run, unpause_run
from longhaul.server.resume import resume
from longhaul.server.service import RunService
from longhaul.server.timeline import Timeline, timeline
from longhaul.storage import RunFilter

router = APIRouter(tags=["runs"])


class RunQuery(BaseModel):
    """What a list of runs is filtered on: the API's ``GET /api/runs`` and the dashboard's runs page take
    the same query (so the same bad filter is the same 422, naming the parameter)."""

    model_config = ConfigDict(extra="forbid")

    status: RunStatus | None = None
    workflow: Annotated[str | None, Field(max_length=100)] = None
    event: Annotated[str | None, Field(max_length=100)] = None
    tag: Annotated[str | None, Field(max_length=100, pattern=TAG_PATTERN)] = None
    q: Annotated[
        str | None,
        Field(max_length=200, description="Part of the business key (any case), or a run or event id."),
    ] = None
    created_after: Annotated[datetime | None, Field(description="Created at or after (ISO time).")] = None
    created_before: Annotated[datetime | None, Field(description="Created before (ISO time).")] = None
    children_of: Annotated[
        str | None,
        Field(
            max_length=40,
            description="The runs this run started: its child runs (trigger_and_wait), its replays, and "
            "the runs of the events it emitted.",
        ),
    ] = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    cursor: str | None = None
    system: Annotated[
        bool, Field(description="longhaul's own runs (its schedules) instead of the tenant's: admin keys.")
    ] = False

    @model_validator(mode="before")
    @classmethod
    def _blank_is_any(cls, data: Any) -> Any:
        """An empty field means "any" (a browser's form sends ``status=`` for an unchosen select)."""
        return {k: v for k, v in data.items() if v != ""} if isinstance(data, dict) else data

    @field_validator("created_after", "created_before")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """A time without a zone is UTC (as every time longhaul shows)."""
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    def filter(self, caller: Caller) -> RunFilter:
        """The filter for ``caller``: its tenant's runs, or (``system``, admin keys only) longhaul's own."""
        if self.system and not caller.admin:
            raise HTTPException(
                status_code=403, detail="longhaul's own runs (system=true) are for admin keys"
            )
        return RunFilter(
            tenant=SYSTEM_TENANT if self.system else caller.tenant, status=self.status,
            workflow=self.workflow, event=self.event, tag=self.tag, search=self.q,
            created_after=self.created_after, created_before=self.created_before,
            children_of=self.children_of,
        )  # fmt: skip


@router.get("/api/runs", response_model=RunPage, responses=ERRORS)
async def list_runs(service: Service, caller: CallerOf, query: Annotated[RunQuery, Query()]) -> RunPage:
    """Runs, newest first, filtered; follow ``next_cursor`` for the next page."""
    page = await service.store.page(query.filter(caller), limit=query.limit, cursor=query.cursor)
    return page.model_copy(update={"runs": await service.explain(page.runs)})


@router.get(RUN_PATH, response_model=RunRecord, name="get_run", responses=ERRORS)
async def get_run(run_id: str, service: Service, waitpoints: Waitpoints, caller: CallerOf) -> RunRecord:
    """A run's durable record: status, progress, stage, logs, output, error, timestamps, and its waitpoint
    tokens with their callback URLs."""
    run = await visible_run(service, run_id, caller)
    return run.model_copy(update={"waitpoints": [waitpoints.shown(token) for token in run.waitpoints]})


@router.get(RUN_PATH + "/timeline", response_model=Timeline, responses=ERRORS)
async def get_timeline(run_id: str, service: Service, caller: CallerOf) -> Timeline:
    """A run's steps as its Temporal history records them: each activity's start, end, attempts, input and
    result (decoded, cut to 600 characters), failure and stack; local activities, timers, signals,
    updates, child workflows. Empty for a run not started in Temporal."""
    return await timeline(service.client, await visible_run(service, run_id, caller))


async def visible_run(service: RunService, run_id: str, caller: Caller) -> RunRecord:
    """The run, if ``caller`` may see it: its tenant's, or (admin keys) one of longhaul's own."""
    try:
        return await service.get(run_id, tenant=caller.tenant)
    except NotFoundError:
        if not caller.admin:
            raise
        return await service.get(run_id, tenant=SYSTEM_TENANT)


class Why(BaseModel):
    """Why a run is cancelled or paused (optional)."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500, description="Why: kept in the run's record.")


@router.post("/api/runs/{run_id}/cancel", status_code=202, response_model=RunRecord, responses=ERRORS)
async def cancel_run(run_id: str, service: Service, caller: CallerOf, asked: Why | None = None) -> RunRecord:
    """Ask the run to stop. Its workflow runs its compensations and records ``cancelled``, its error
    saying who asked (this key) and why (``reason``, optional)."""
    reason = asked.reason if asked else None
    return await service.cancel(run_id, tenant=caller.tenant, by=_by(caller), reason=reason)


@router.post("/api/runs/{run_id}/pause", response_model=RunRecord, responses=ERRORS)
async def pause(run_id: str, service: Service, caller: CallerOf, asked: Why | None = None) -> RunRecord:
    """Pause the run. A waiting run stays pending (not started until unpaused); a started one is paused
    in Temporal: its steps and timers wait. 409 for a closed run, or a started one where the Temporal
    server does not pause workflows (docs/events.md "Pause one run")."""
    reason = asked.reason if asked else None
    return await pause_run(service, run_id, tenant=caller.tenant, by=_by(caller), reason=reason)


@router.post("/api/runs/{run_id}/unpause", response_model=RunRecord, responses=ERRORS)
async def unpause(run_id: str, service: Service, caller: CallerOf) -> RunRecord:
    """Let a paused run go on (409 if it is not paused)."""
    return await unpause_run(service, run_id, tenant=caller.tenant, by=_by(caller))


def _by(caller: Caller) -> str:
    return f"key {caller.key_id} (API)"


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


@router.post("/api/runs/{run_id}/resume", status_code=202, response_model=RunRecord, responses=ERRORS)
async def resume_run(run_id: str, service: Service, tenant: Tenant) -> RunRecord:
    """Resume a failed run from the step that failed, on the code running now (a Temporal reset): the
    steps before it are not done again. 409 for a run that is not failed, or whose failure was followed
    by steps that reacted to it (compensations): replay those instead."""
    return await resume(service, run_id, tenant=tenant)
