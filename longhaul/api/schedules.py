"""Schedules: listed for everyone with an admin key, paused, unpaused, triggered and backfilled by them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BaseModel
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from longhaul.api.deps import ADMIN_ERRORS, JSON_BODY, Admin, CallerOf, TemporalClient
from longhaul.server import schedules
from longhaul.server.envelopes import NotFoundError, TemporalUnavailableError
from longhaul.server.schedules import ScheduleInfo
from longhaul.temporal import is_unavailable

router = APIRouter(tags=["schedules"])


class Backfill(BaseModel):
    start: AwareDatetime
    end: AwareDatetime


_ACTIONS: dict[str, Callable[[Client, str], Awaitable[None]]] = {
    "pause": lambda client, schedule: schedules.pause(client, schedule, "paused through the API"),
    "unpause": lambda client, schedule: schedules.unpause(client, schedule, "unpaused through the API"),
    "trigger": schedules.trigger,
}


@router.get("/api/schedules", response_model=list[ScheduleInfo])
async def list_schedules(client: TemporalClient, caller: CallerOf) -> list[ScheduleInfo]:
    """longhaul's schedules (declared in code, synced to Temporal) with their next run times. They
    are global, so only admin keys see them; a tenant key sees none."""
    return await schedules.describe_all(client) if caller.admin else []


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
    await _call(sid, schedules.backfill(client, sid, window.start, window.end))
    return {"schedule": sid, "done": "backfill"}


@router.post("/api/schedules/{schedule}/{action}", status_code=202, responses=ADMIN_ERRORS)
async def act_on_schedule(
    schedule: str, action: Literal["pause", "unpause", "trigger"], client: TemporalClient, admin: Admin
) -> dict[str, str]:
    """Pause, unpause or trigger (run now; the overlap policy still applies) a schedule (admin keys).
    ``schedule`` is its id as listed (``longhaul.reconcile-runs``)."""
    sid = schedules.schedule_id(schedule)
    await _call(sid, _ACTIONS[action](client, sid))
    return {"schedule": sid, "done": action}


async def _call(schedule: str, call: Awaitable[None]) -> None:
    try:
        await call
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise NotFoundError(f"no schedule '{schedule}'") from error
        if is_unavailable(error):
            raise TemporalUnavailableError(f"Temporal is unavailable: {error}") from error
        raise
