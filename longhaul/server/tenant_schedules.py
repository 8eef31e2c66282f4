"""Tenant schedules on Temporal (:mod:`longhaul.tenant_schedules`): create, change, delete and describe
them, keeping the row in app storage and the Temporal Schedule in step.

Create keeps the row first (its unique key is the tenant's id), then makes the Temporal Schedule: a
repeated create finds the row and makes sure the schedule exists (so a create cut short by a crash is
finished by its retry); a create refused by Temporal (a bad cron) or made while it is down removes the row
it added, so nothing is half-written. A change is made in Temporal first, then in the row.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleHandle,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError

from longhaul.config import Settings
from longhaul.server.envelopes import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    UnknownEventError,
)
from longhaul.server.schedules import answered, spec_of
from longhaul.server.service import RunService
from longhaul.storage.schedules import TenantScheduleStore
from longhaul.temporal import EVENT, RPC_TIMEOUT, TENANT
from longhaul.tenant_schedules import (
    Overlap,
    ScheduleChange,
    ScheduledEvent,
    ScheduleRequest,
    TenantSchedule,
)

FIRE_WORKFLOW = "tenant-schedule"  # longhaul/workflows/scheduled.py
MAX_PER_TENANT = 1000
_OVERLAP = {
    Overlap.SKIP: ScheduleOverlapPolicy.SKIP,
    Overlap.BUFFER_ONE: ScheduleOverlapPolicy.BUFFER_ONE,
    Overlap.BUFFER_ALL: ScheduleOverlapPolicy.BUFFER_ALL,
    Overlap.ALLOW_ALL: ScheduleOverlapPolicy.ALLOW_ALL,
}
T = TypeVar("T")


def temporal_schedule(schedule: TenantSchedule, settings: Settings) -> Schedule:
    """The Temporal Schedule of a tenant schedule: its action starts one firing workflow per time."""
    fire = ScheduledEvent(
        tenant=schedule.tenant, schedule=schedule.id, event=schedule.event, payload=schedule.payload,
        wait=schedule.overlap != Overlap.ALLOW_ALL,
    )  # fmt: skip
    return Schedule(
        action=ScheduleActionStartWorkflow(
            FIRE_WORKFLOW,
            fire,
            id=schedule.schedule_id,  # the server appends each firing's time
            task_queue=settings.task_queue,
            typed_search_attributes=TypedSearchAttributes(
                [SearchAttributePair(TENANT, schedule.tenant), SearchAttributePair(EVENT, schedule.event)]
            ),
            static_summary=f"schedule {schedule.id} of {schedule.tenant} → {schedule.event}",
        ),
        spec=spec_of(
            schedule.cron,
            timedelta(seconds=schedule.interval_seconds) if schedule.interval_seconds else None,
            schedule.timezone,
        ),
        policy=SchedulePolicy(
            overlap=_OVERLAP[schedule.overlap],
            catchup_window=timedelta(seconds=schedule.catchup_window_seconds),
        ),
        state=ScheduleState(paused=schedule.paused, note=schedule.note or None),
    )


def _spec_loc(schedule: TenantSchedule) -> list[str]:
    """Where a spec Temporal refuses is wrong: its cron (an interval it takes as given)."""
    return ["cron"] if schedule.cron else []


def _invalid(loc: list[str], msg: str) -> InvalidInputError:
    return InvalidInputError([{"type": "value_error", "loc": loc, "msg": msg}])


class TenantSchedules:
    """A process's tenant schedules (one per API process, sharing its service)."""

    def __init__(self, service: RunService, store: TenantScheduleStore) -> None:
        self.service = service
        self.client: Client = service.client
        self.store = store

    async def create(self, tenant: str, request: ScheduleRequest, by: str) -> tuple[TenantSchedule, bool]:
        """Create the schedule, or return the tenant's schedule of that id; second item: created now?"""
        self._check_event(request.event, request.payload, tenant)
        if (
            await self.store.get(tenant, request.id) is None
            and await self.store.count(tenant) >= MAX_PER_TENANT
        ):
            raise ConflictError(f"tenant '{tenant}' has {MAX_PER_TENANT} schedules, the most it may have")
        schedule, added = await self.store.add(tenant, request, by)
        try:
            await answered(self._ensure(schedule), schedule.id, spec_loc=_spec_loc(schedule))
        except Exception:
            if added:  # nothing half-written: no row without its schedule
                await self.store.remove(tenant, request.id)
            raise
        return await self.described(schedule), added

    async def _ensure(self, schedule: TenantSchedule) -> None:
        try:
            settings = self.service.settings
            await self.client.create_schedule(
                schedule.schedule_id, temporal_schedule(schedule, settings), rpc_timeout=RPC_TIMEOUT
            )
        except ScheduleAlreadyRunningError:
            pass  # a repeated create (or the retry of one cut short)

    async def change(self, tenant: str, schedule_id: str, change: ScheduleChange) -> TenantSchedule:
        """Apply ``change`` (the fields given) in Temporal, then to the row."""
        current = await self.get(tenant, schedule_id, describe=False)
        values = change.model_dump(mode="json", exclude_unset=True)
        if values.get("cron") is not None:
            values["interval_seconds"] = None
        elif values.get("interval_seconds") is not None:
            values["cron"] = None
        changed = current.model_copy(update=values)
        if (changed.cron is None) == (changed.interval_seconds is None):
            raise _invalid([], "give exactly one of cron and interval_seconds")
        if "payload" in values:
            self._check_event(changed.event, changed.payload, tenant)

        async def update(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=temporal_schedule(changed, self.service.settings))

        await answered(
            self._handle(current).update(update, rpc_timeout=RPC_TIMEOUT),
            current.id,
            spec_loc=_spec_loc(changed),
        )
        stored = await self.store.change(tenant, schedule_id, values)
        assert stored is not None
        return await self.described(stored)

    async def delete(self, tenant: str, schedule_id: str) -> None:
        current = await self.get(tenant, schedule_id, describe=False)
        with contextlib.suppress(NotFoundError):  # gone from Temporal already: remove the row too
            await answered(self._handle(current).delete(rpc_timeout=RPC_TIMEOUT), current.id)
        await self.store.remove(tenant, schedule_id)

    async def trigger(self, tenant: str, schedule_id: str) -> None:
        """Fire now (the overlap policy still applies)."""
        current = await self.get(tenant, schedule_id, describe=False)
        await answered(self._handle(current).trigger(rpc_timeout=RPC_TIMEOUT), current.id)

    async def get(self, tenant: str, schedule_id: str, *, describe: bool = True) -> TenantSchedule:
        schedule = await self.store.get(tenant, schedule_id)
        if schedule is None:
            raise NotFoundError(f"no schedule '{schedule_id}'")
        return await self.described(schedule) if describe else schedule

    async def list(self, tenant: str) -> list[TenantSchedule]:
        gate = asyncio.Semaphore(16)

        async def described(schedule: TenantSchedule) -> TenantSchedule:
            async with gate:
                return await self.described(schedule)

        return list(await asyncio.gather(*(described(s) for s in await self.store.list(tenant))))

    async def described(self, schedule: TenantSchedule) -> TenantSchedule:
        """With its next three and last three firings from Temporal (without them if it cannot say now:
        a list still shows while Temporal is down)."""
        try:
            description = await self._handle(schedule).describe(rpc_timeout=RPC_TIMEOUT)
        except (RPCError, RuntimeError):
            return schedule
        info = description.info
        return schedule.model_copy(
            update={
                "paused": description.schedule.state.paused,
                "next_runs": list(info.next_action_times[:3]),
                "recent_runs": [action.scheduled_at for action in info.recent_actions[-3:]],
            }
        )

    def _handle(self, schedule: TenantSchedule) -> ScheduleHandle:
        return self.client.get_schedule_handle(schedule.schedule_id)

    def _check_event(self, event: str, payload: dict[str, Any], tenant: str) -> None:
        """The event is known and the payload fits its schema (errors name ``body.event`` or the field)."""
        try:
            self.service.validate(event, payload, "payload", sender=tenant)
        except UnknownEventError as error:
            known = ", ".join(sorted(self.service.catalog.events))
            raise _invalid(["event"], f"no event '{event}'; known: {known}") from error
