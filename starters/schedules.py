"""Make the server's schedules match the ones declared in code, and act on them.

longhaul owns the schedules whose id starts with ``longhaul.``; others on the namespace are left alone.
Each carries the fingerprint of its declaration in its memo: sync creates what is missing, replaces what
changed (delete, then create: a schedule's memo cannot be updated), deletes what the code no longer
declares, and touches nothing else — running it twice changes nothing. A pause or unpause made by an
operator therefore lasts until the declaration itself changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleBackfill,
    ScheduleIntervalSpec,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from longhaul.config import Settings
from longhaul.models import DEFAULT_TENANT
from longhaul.temporal import EVENT, TENANT
from workflows.schedules import ScheduleDecl

PREFIX = "longhaul."
FINGERPRINT = "longhaul_fingerprint"
SPEC = "longhaul_spec"


def schedule_id(decl_id: str) -> str:
    return PREFIX + decl_id


@dataclass(frozen=True)
class Change:
    action: Literal["create", "replace", "delete", "unchanged"]
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


def _schedule(decl: ScheduleDecl, settings: Settings) -> Schedule:
    event = f"schedule:{decl.id}"
    return Schedule(
        action=ScheduleActionStartWorkflow(
            decl.workflow_name,
            decl.input,
            id=f"{decl.workflow_name}/{DEFAULT_TENANT}/{decl.id}",  # the server appends the start time
            task_queue=settings.task_queue,
            typed_search_attributes=TypedSearchAttributes(
                [SearchAttributePair(TENANT, DEFAULT_TENANT), SearchAttributePair(EVENT, event)]
            ),
            static_summary=f"{event} → {decl.workflow_name}",
        ),
        spec=ScheduleSpec(
            cron_expressions=[decl.cron] if decl.cron else [],
            intervals=[ScheduleIntervalSpec(every=decl.every)] if decl.every else [],
            time_zone_name=decl.timezone,
            jitter=decl.jitter,
        ),
        policy=SchedulePolicy(overlap=decl.overlap, catchup_window=decl.catchup_window),
        state=ScheduleState(paused=decl.paused, note=decl.note or None),
    )


def _spec_text(decl: ScheduleDecl) -> str:
    return f"cron {decl.cron} ({decl.timezone})" if decl.cron else f"every {decl.every}"


async def _existing(client: Client) -> dict[str, str | None]:
    """longhaul's schedules on the server, with their fingerprints."""
    found: dict[str, str | None] = {}
    async for listed in await client.list_schedules():
        if listed.id.startswith(PREFIX):
            found[listed.id] = await listed.memo_value(FINGERPRINT, None)
    return found


async def plan(client: Client, decls: list[ScheduleDecl]) -> list[Change]:
    """What sync would do, without doing it (``--dry-run``)."""
    existing = await _existing(client)
    changes = []
    for decl in decls:
        sid = schedule_id(decl.id)
        if sid not in existing:
            changes.append(Change("create", sid))
        elif existing[sid] != decl.fingerprint():
            changes.append(Change("replace", sid))
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
        if change.action in ("replace", "delete"):
            await client.get_schedule_handle(change.id).delete()
        if change.action in ("create", "replace"):
            decl = by_id[change.id]
            memo = {FINGERPRINT: decl.fingerprint(), SPEC: _spec_text(decl)}
            await client.create_schedule(change.id, _schedule(decl, settings), memo=memo)
    return changes


async def describe_all(client: Client) -> list[ScheduleInfo]:
    """longhaul's schedules with their next and recent run times."""
    infos = []
    for sid in sorted(await _existing(client)):
        description = await client.get_schedule_handle(sid).describe()
        schedule, info = description.schedule, description.info
        action = schedule.action
        # The server turns cron strings into calendars; show what was declared.
        shown = await description.memo_value(SPEC, "") or f"{len(schedule.spec.calendars)} calendar(s)"
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


async def pause(client: Client, decl_id: str, note: str) -> None:
    await client.get_schedule_handle(schedule_id(decl_id)).pause(note=note)


async def unpause(client: Client, decl_id: str, note: str) -> None:
    await client.get_schedule_handle(schedule_id(decl_id)).unpause(note=note)


async def trigger(client: Client, decl_id: str) -> None:
    """Run now (the overlap policy still applies: a running cleanup is not doubled)."""
    await client.get_schedule_handle(schedule_id(decl_id)).trigger()


async def backfill(client: Client, decl_id: str, start: datetime, end: datetime) -> None:
    """Run the actions the schedule would have taken between ``start`` and ``end``."""
    await client.get_schedule_handle(schedule_id(decl_id)).backfill(
        ScheduleBackfill(start_at=start, end_at=end)
    )
