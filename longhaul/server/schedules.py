"""Make the server's schedules match the ones declared in code, and act on them.

longhaul owns the schedules whose id starts with ``longhaul.``; others on the namespace are left alone.
That id, as listed, is the one every command and endpoint takes (the short ``reconcile-runs`` is accepted
too). Each schedule carries the fingerprint of its declaration in its action's memo: sync creates what is
missing, updates what changed in place (so its recent runs and history stay), deletes what the code no
longer declares, and touches nothing else — running it twice changes nothing. A pause or unpause made by
an operator survives an update, unless the declaration's own ``paused`` changed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from pydantic import BaseModel
from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleBackfill,
    ScheduleDescription,
    ScheduleIntervalSpec,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from longhaul.config import Settings
from longhaul.models import SYSTEM_TENANT
from longhaul.server.envelopes import InvalidInputError, NotFoundError, TemporalUnavailableError
from longhaul.temporal import EVENT, TENANT, is_unavailable
from longhaul.workflows.schedules import ScheduleDecl

PREFIX = "longhaul."
FINGERPRINT = "longhaul_fingerprint"
SPEC = "longhaul_spec"
DECLARED_PAUSED = "longhaul_paused"
T = TypeVar("T")


def schedule_id(given: str) -> str:
    """The schedule's id on the server (``longhaul.reconcile-runs``), from that id or the declared one."""
    return given if given.startswith(PREFIX) else PREFIX + given


@dataclass(frozen=True)
class Change:
    action: Literal["create", "update", "delete", "unchanged"]
    id: str

    def __str__(self) -> str:
        return f"{self.action:<9} {self.id}"


class ScheduleInfo(BaseModel):
    id: str
    workflow: str
    spec: str
    paused: bool
    note: str | None
    next_runs: list[datetime]
    recent_runs: list[datetime]


def _schedule(decl: ScheduleDecl, settings: Settings, state: ScheduleState | None = None) -> Schedule:
    event = f"schedule:{decl.id}"
    return Schedule(
        action=ScheduleActionStartWorkflow(
            decl.workflow_name,
            decl.input,
            id=f"{decl.workflow_name}/{SYSTEM_TENANT}/{decl.id}",  # the server appends the start time
            task_queue=settings.task_queue,
            typed_search_attributes=TypedSearchAttributes(
                [SearchAttributePair(TENANT, SYSTEM_TENANT), SearchAttributePair(EVENT, event)]
            ),
            static_summary=f"{event} → {decl.workflow_name}",
            # The action's memo, unlike the schedule's, can be updated: it holds what sync compares.
            memo={FINGERPRINT: decl.fingerprint(), SPEC: _spec_text(decl), DECLARED_PAUSED: decl.paused},
        ),
        spec=spec_of(decl.cron, decl.every, decl.timezone, decl.jitter),
        policy=SchedulePolicy(overlap=decl.overlap, catchup_window=decl.catchup_window),
        state=state or ScheduleState(paused=decl.paused, note=decl.note or None),
    )


def spec_of(
    cron: str | None, every: timedelta | None, timezone: str, jitter: timedelta = timedelta(0)
) -> ScheduleSpec:
    """When a schedule (declared, or a tenant's) fires: a cron read in ``timezone``, or an interval."""
    return ScheduleSpec(
        cron_expressions=[cron] if cron else [],
        intervals=[ScheduleIntervalSpec(every=every)] if every else [],
        time_zone_name=timezone,
        jitter=jitter,
    )


async def answered(call: Awaitable[T], schedule: str, *, spec_loc: list[str] | None = None) -> T:
    """``call`` to Temporal about ``schedule``, its refusals as the API's: a schedule it does not have
    (404 naming it), Temporal unreachable (503); with ``spec_loc``, a spec it cannot read (422 there)."""
    try:
        return await call
    except (RPCError, RuntimeError) as error:  # a lazy client's first connection fails as a RuntimeError
        if is_unavailable(error):
            raise TemporalUnavailableError.of(error) from error
        if isinstance(error, RPCError) and error.status == RPCStatusCode.NOT_FOUND:
            raise NotFoundError(f"no schedule '{schedule}'") from error
        if (
            spec_loc is not None
            and isinstance(error, RPCError)
            and error.status == RPCStatusCode.INVALID_ARGUMENT
        ):
            raise InvalidInputError(
                [{"type": "value_error", "loc": spec_loc, "msg": error.message}]
            ) from error
        raise


def _spec_text(decl: ScheduleDecl) -> str:
    return f"cron {decl.cron} ({decl.timezone})" if decl.cron else f"every {decl.every}"


async def _declared(client: Client, description: ScheduleDescription) -> dict[str, Any]:
    """What sync recorded of the declaration: the action's memo (or, for a schedule synced by a release
    that replaced schedules instead of updating them, the schedule's own memo)."""
    action = description.schedule.action
    raw = action.memo if isinstance(action, ScheduleActionStartWorkflow) and action.memo else {}
    payloads = {k: v for k, v in raw.items() if isinstance(v, Payload)}
    values = dict(zip(payloads, await client.data_converter.decode(list(payloads.values())), strict=True))
    return values if FINGERPRINT in values else dict(await description.memo())


async def _existing(client: Client) -> dict[str, dict[str, Any]]:
    """longhaul's schedules on the server, with what sync recorded of their declarations."""
    found: dict[str, dict[str, Any]] = {}
    async for listed in await client.list_schedules():
        if listed.id.startswith(PREFIX) and (description := await _described(client, listed.id)):
            found[listed.id] = await _declared(client, description)
    return found


async def _described(client: Client, sid: str) -> ScheduleDescription | None:
    """The schedule's description; None if it is gone. The list is the server's visibility store, which
    lags: a schedule deleted a moment ago may still be listed (a test run on a busy server showed it)."""
    try:
        return await client.get_schedule_handle(sid).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def plan(client: Client, decls: list[ScheduleDecl]) -> list[Change]:
    """What sync would do, without doing it (``--dry-run``), in the order of the schedules' ids."""
    existing = await _existing(client)
    changes = []
    for decl in sorted(decls, key=lambda decl: decl.id):
        sid = schedule_id(decl.id)
        if sid not in existing:
            changes.append(Change("create", sid))
        elif existing[sid].get(FINGERPRINT) != decl.fingerprint():
            changes.append(Change("update", sid))
        else:
            changes.append(Change("unchanged", sid))
    declared_ids = {schedule_id(d.id) for d in decls}
    changes += [Change("delete", sid) for sid in sorted(existing) if sid not in declared_ids]
    return changes


async def sync(
    client: Client, decls: list[ScheduleDecl], settings: Settings, *, dry_run: bool = False
) -> list[Change]:
    """Make the server match ``decls``; returns what was (or, with ``dry_run``, would be) done."""
    changes = await plan(client, decls)
    if dry_run:
        return changes
    by_id = {schedule_id(d.id): d for d in decls}
    for change in changes:
        handle = client.get_schedule_handle(change.id)
        if change.action == "delete":
            await handle.delete()
        elif change.action == "create":
            await client.create_schedule(change.id, _schedule(by_id[change.id], settings))
        elif change.action == "update":
            await handle.update(await _updater(client, by_id[change.id], settings))
    return changes


async def _updater(
    client: Client, decl: ScheduleDecl, settings: Settings
) -> Callable[[ScheduleUpdateInput], Awaitable[ScheduleUpdate]]:
    async def update(current: ScheduleUpdateInput) -> ScheduleUpdate:
        """The declared schedule, keeping an operator's pause or unpause (and its note) unless the
        declaration's own ``paused`` changed."""
        state = current.description.schedule.state
        declared_paused = (await _declared(client, current.description)).get(DECLARED_PAUSED)
        if declared_paused is not None and declared_paused != decl.paused:
            state = ScheduleState(paused=decl.paused, note=decl.note or None)
        return ScheduleUpdate(schedule=_schedule(decl, settings, state))

    return update


async def describe_all(client: Client) -> list[ScheduleInfo]:
    """longhaul's schedules with their next and recent run times."""
    infos = []
    for sid in sorted(await _existing(client)):
        if (description := await _described(client, sid)) is None:
            continue
        schedule, info = description.schedule, description.info
        action = schedule.action
        # The server turns cron strings into calendars; show what was declared.
        shown = (await _declared(client, description)).get(
            SPEC
        ) or f"{len(schedule.spec.calendars)} calendar(s)"
        infos.append(
            ScheduleInfo(
                id=sid,
                workflow=action.workflow if isinstance(action, ScheduleActionStartWorkflow) else "?",
                spec=shown,
                paused=schedule.state.paused,
                note=schedule.state.note,
                next_runs=list(info.next_action_times[:3]),
                recent_runs=[a.scheduled_at for a in info.recent_actions[-3:]],
            )
        )
    return infos


async def pause(client: Client, schedule: str, note: str) -> None:
    await client.get_schedule_handle(schedule_id(schedule)).pause(note=note)


async def unpause(client: Client, schedule: str, note: str) -> None:
    await client.get_schedule_handle(schedule_id(schedule)).unpause(note=note)


async def trigger(client: Client, schedule: str) -> None:
    """Run now (the overlap policy still applies: a running cleanup is not doubled)."""
    await client.get_schedule_handle(schedule_id(schedule)).trigger()


async def backfill(client: Client, schedule: str, start: datetime, end: datetime) -> None:
    """Run the actions the schedule would have taken between ``start`` and ``end``."""
    await client.get_schedule_handle(schedule_id(schedule)).backfill(
        ScheduleBackfill(start_at=start, end_at=end)
    )
