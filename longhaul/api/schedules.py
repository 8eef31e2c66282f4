"""Schedules: a tenant's own, made at run time (create, list, read, change, delete, pause, trigger:
:mod:`longhaul.tenant_schedules`), and longhaul's declared ones (``longhaul.…``: listed with
``system=true``, paused, unpaused, triggered and backfilled by admin keys only)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BaseModel
from temporalio.client import Client

from longhaul.api.deps import (
    ADMIN_ERRORS,
    ERRORS,
    JSON_BODY,
    Admin,
    CallerOf,
    Schedules,
    TemporalClient,
    Tenant,
    current_admin,
)
from longhaul.server import schedules
from longhaul.server.schedules import ScheduleInfo
from longhaul.tenant_schedules import ScheduleChange, ScheduleRequest, TenantSchedule

router = APIRouter(tags=["schedules"])


class Backfill(BaseModel):
    start: AwareDatetime
    end: AwareDatetime


_ACTIONS: dict[str, Callable[[Client, str], Awaitable[None]]] = {
    "pause": lambda client, schedule: schedules.pause(client, schedule, "paused through the API"),
    "unpause": lambda client, schedule: schedules.unpause(client, schedule, "unpaused through the API"),
    "trigger": schedules.trigger,
}


@router.get("/api/schedules", response_model=list[TenantSchedule] | list[ScheduleInfo], responses=ERRORS)
async def list_schedules(
    client: TemporalClient,
    caller: CallerOf,
    tenant_schedules: Schedules,
    system: Annotated[bool, Query(description="longhaul's declared schedules instead (admin keys).")] = False,
) -> list[TenantSchedule] | list[ScheduleInfo]:
    """The tenant's schedules with their next and recent firings; with ``system=true``, longhaul's own
    (declared in code, synced to Temporal: global, so for admin keys only, 403 otherwise)."""
    if not system:
        return await tenant_schedules.list(caller.tenant)
    if not caller.admin:
        raise HTTPException(status_code=403, detail="longhaul's declared schedules are for admin keys")
    return await schedules.describe_all(client)


@router.post("/api/schedules", status_code=201, response_model=TenantSchedule, responses=ERRORS)
async def create_schedule(
    request: ScheduleRequest, response: Response, tenant_schedules: Schedules, caller: CallerOf
) -> TenantSchedule:
    """Send ``event`` with ``payload`` for the tenant on a cron (in ``timezone``) or every
    ``interval_seconds``; each firing's runs go through the run queue. 201 when created; 200 with the
    first when the tenant has a schedule of that ``id`` already. 422 naming the field for an unknown
    event, a payload its schema refuses, a cron Temporal cannot read or an unknown time zone."""
    schedule, created = await tenant_schedules.create(caller.tenant, request, f"key {caller.key_id}")
    if not created:
        response.status_code = 200
    return schedule


@router.get("/api/schedules/{schedule}", response_model=TenantSchedule, responses=ERRORS)
async def get_schedule(schedule: str, tenant_schedules: Schedules, tenant: Tenant) -> TenantSchedule:
    """One of the tenant's schedules (another tenant's is a 404)."""
    return await tenant_schedules.get(tenant, schedule)


@router.patch("/api/schedules/{schedule}", response_model=TenantSchedule, responses=ERRORS)
async def change_schedule(
    schedule: str, change: ScheduleChange, tenant_schedules: Schedules, tenant: Tenant
) -> TenantSchedule:
    """Change what is given (payload, cron or interval, time zone, overlap, catch-up, paused, note)."""
    return await tenant_schedules.change(tenant, schedule, change)


@router.delete("/api/schedules/{schedule}", status_code=204, responses=ERRORS)
async def delete_schedule(schedule: str, tenant_schedules: Schedules, tenant: Tenant) -> None:
    """Delete the schedule (runs it made go on)."""
    await tenant_schedules.delete(tenant, schedule)


@router.post(
    "/api/schedules/{schedule}/backfill", status_code=202, responses=ADMIN_ERRORS, dependencies=JSON_BODY
)
async def backfill_schedule(
    schedule: str, window: Backfill, client: TemporalClient, admin: Admin
) -> dict[str, str]:
    """Run the actions the schedule would have taken between ``start`` and ``end`` (admin keys)."""
    if window.end <= window.start:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ["body", "end"], "msg": "must be after start"}]
        )
    sid = schedules.schedule_id(schedule)
    await schedules.answered(schedules.backfill(client, sid, window.start, window.end), sid)
    return {"schedule": sid, "done": "backfill"}


@router.post("/api/schedules/{schedule}/{action}", status_code=202, responses=ADMIN_ERRORS)
async def act_on_schedule(
    schedule: str,
    action: Literal["pause", "unpause", "trigger"],
    client: TemporalClient,
    caller: CallerOf,
    tenant_schedules: Schedules,
) -> dict[str, str]:
    """Pause, unpause or trigger (run now; the overlap policy still applies) one of the tenant's
    schedules, or (admin keys) one of longhaul's, by its id as listed (``longhaul.reconcile-runs``)."""
    if not schedule.startswith(schedules.PREFIX):
        if action == "trigger":
            await tenant_schedules.trigger(caller.tenant, schedule)
        else:
            change = ScheduleChange(paused=action == "pause")
            await tenant_schedules.change(caller.tenant, schedule, change)
        return {"schedule": schedule, "done": action}
    await current_admin(caller)
    await schedules.answered(_ACTIONS[action](client, schedule), schedule)
    return {"schedule": schedule, "done": action}
