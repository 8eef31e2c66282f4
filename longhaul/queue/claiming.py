"""Claiming: dispatchers take due runs whose slots have room, start them, and close what never starts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, bindparam, case, exists, func, literal, or_, select, union, update
from sqlalchemy.ext.asyncio import AsyncConnection

from longhaul.alerts import enqueue
from longhaul.db import Database, as_utc, insert_ignoring_duplicates, lock_scopes, upsert, utcnow, writing
from longhaul.flow import JoinKind, SlotKind, gate_name
from longhaul.models import AlertKind, RunRecord, RunStatus
from longhaul.queue.tables import (
    ACTIVE,
    FAIR_SHARES,
    LEASES,
    LIMITS,
    PENDING,
    RUNS,
    SLOTS,
    closed,
    due_now,
    paused,
    slot_use,
    slots_of,
)
from longhaul.records import notify_queue, record_of, tags_of


@dataclass(frozen=True)
class Lease:
    """The lease a dispatcher renews with each claim on SQLite."""

    name: str
    holder: str
    seconds: float


class LeaseLostError(RuntimeError):
    """Another dispatcher holds the lease: this one stands by."""


def _busy_scopes(now: datetime) -> Any:
    """Scopes with no room now: concurrency scopes whose active runs fill the limit, rate scopes whose
    starts within their period fill it."""
    runs = RUNS.alias("active_runs")
    limit = func.coalesce(func.min(LIMITS.c.limit), func.min(SLOTS.c.limit))  # a limit set at run time first
    full = (
        select(SLOTS.c.scope)
        .join(runs, runs.c.id == SLOTS.c.run_id)
        .outerjoin(LIMITS, LIMITS.c.scope == SLOTS.c.scope)
        .where(SLOTS.c.kind == SlotKind.CONCURRENCY.value, runs.c.status.in_(ACTIVE))
        .group_by(SLOTS.c.scope)
        .having(func.count() >= limit)
    )
    spent = (
        select(SLOTS.c.scope)
        .outerjoin(LIMITS, LIMITS.c.scope == SLOTS.c.scope)
        .where(SLOTS.c.kind == SlotKind.RATE.value, SLOTS.c.free_at > now)
        .group_by(SLOTS.c.scope)
        .having(func.count() >= limit)
    )
    return union(full, spent)


_FAIR = RUNS.c.fair_key.is_not(None)
_CLOCK = "*"  # the clock's key in fair_shares (queue "")
_FAIR_LOCK = "longhaul:fair-share"
_TURN_COLUMNS = frozenset({"flow_queue", "flow_key", "turn", "weight", "_slots"})


def _run_columns(row: dict[str, Any]) -> dict[str, Any]:
    """A claimed row's run columns, without what the claim computed beside them."""
    return {key: value for key, value in row.items() if key not in _TURN_COLUMNS}


# A claimed run takes no more events into it (debounce, batch); it stays its key's singleton until it closes.
_kept_gate = case((RUNS.c.gate.like(gate_name(JoinKind.SINGLETON, "%")), RUNS.c.gate), else_=None)


class Claiming:
    """The run queue's dispatching part (see :class:`longhaul.queue.RunQueue`)."""

    db: Database

    async def claim(self, limit: int, *, lease: Lease | None = None) -> list[RunRecord]:
        """Take up to ``limit`` due runs whose slots all have room and whose queue (or their tenant's key
        of it) is not paused, in priority then arrival order (with fair share: in turns, see
        :meth:`_in_turns`), and mark them ``queued`` (claimed, not yet started). Raises LeaseLostError
        if ``lease`` is held by another dispatcher."""
        now = utcnow()
        async with writing(self.db) as conn:
            if lease is not None and not await self._renew(conn, lease, now):
                raise LeaseLostError(lease.name)
            busy = _busy_scopes(now).subquery()
            full = exists().where(SLOTS.c.run_id == RUNS.c.id, SLOTS.c.scope.in_(select(busy.c.scope)))
            blocked = or_(full, paused())
            fair = await conn.scalar(select(exists().where(RUNS.c.status == PENDING, _FAIR)))
            if fair:
                candidates = await self._in_turns(conn, now, blocked, limit)
            else:
                candidates = (
                    select(RUNS)
                    .where(*due_now(now), ~blocked)
                    .order_by(RUNS.c.priority, RUNS.c.created_at, RUNS.c.id)
                    .limit(limit)
                )
            if not self.db.is_sqlite:
                candidates = candidates.with_for_update(skip_locked=True, of=RUNS)
            rows = [dict(row) for row in (await conn.execute(candidates)).mappings()]
            if not rows:
                return []
            chosen = await self._fit(conn, rows, now)
            if chosen:
                await self._mark_claimed(conn, chosen, now)
                if fair:
                    await self._take_turns(conn, chosen)
            tags = await tags_of(conn, [row["id"] for row in chosen])  # the start sets them in Temporal
        return [
            record_of(
                {**_run_columns(row), "status": RunStatus.QUEUED.value, "claimed_at": now},
                tags.get(row["id"], []),
            )
            for row in chosen
        ]

    async def _in_turns(self, conn: AsyncConnection, now: datetime, blocked: Any, limit: int) -> Select[Any]:
        """The due runs in turns (fair share, one query): each flow (a fair-share queue's key value; the
        runs without fair share are one flow) stands at its ``turn``, or at the clock if it fell behind
        (back from idle: it does not get the turns it missed), and its n-th waiting run (in priority then
        arrival order) at ``turn + (n - 1) / weight``. Round robin for equal weights, in proportion to
        the weights otherwise; a flow's runs keep their priority order. On PostgreSQL, claims in turns
        take one advisory lock: two dispatchers must not both read a flow's turn, then both move it."""
        await lock_scopes(conn, [_FAIR_LOCK], is_sqlite=self.db.is_sqlite)
        flow_queue = case((_FAIR, RUNS.c.queue), else_=literal(""))
        flow_key = func.coalesce(RUNS.c.fair_key, literal(""))
        place = func.row_number().over(
            partition_by=(flow_queue, flow_key), order_by=(RUNS.c.priority, RUNS.c.created_at, RUNS.c.id)
        )
        ranked = (
            select(
                RUNS.c.id.label("ranked_id"),
                flow_queue.label("flow_queue"),
                flow_key.label("flow_key"),
                place.label("place"),
            )
            .where(*due_now(now), ~blocked)
            .subquery()
        )
        share, clock = FAIR_SHARES.alias("share"), FAIR_SHARES.alias("clock")
        weight = func.coalesce(share.c.weight, 1.0)
        latest = func.max if self.db.is_sqlite else func.greatest
        turn = (
            latest(func.coalesce(share.c.turn, 0.0), func.coalesce(clock.c.turn, 0.0))
            + (ranked.c.place - 1) / weight
        )
        return (
            select(RUNS, ranked.c.flow_queue, ranked.c.flow_key, turn.label("turn"), weight.label("weight"))
            .join(ranked, ranked.c.ranked_id == RUNS.c.id)
            .outerjoin(share, and_(share.c.queue == ranked.c.flow_queue, share.c.key == ranked.c.flow_key))
            .outerjoin(clock, and_(clock.c.queue == "", clock.c.key == _CLOCK))
            .order_by(turn, RUNS.c.priority, RUNS.c.created_at, RUNS.c.id)
            .limit(limit)
        )

    async def _take_turns(self, conn: AsyncConnection, chosen: list[dict[str, Any]]) -> None:
        """Move each claimed flow's turn past its runs just claimed, and the clock to the last turn."""
        turns: dict[tuple[str, str], float] = {}
        for row in chosen:
            flow = (row["flow_queue"], row["flow_key"])
            turns[flow] = max(turns.get(flow, 0.0), row["turn"] + 1 / row["weight"])
        clock = max(row["turn"] for row in chosen)
        values = [{"queue": q, "key": k, "turn": t} for (q, k), t in [*turns.items(), (("", _CLOCK), clock)]]
        statement = upsert(FAIR_SHARES, is_sqlite=self.db.is_sqlite)
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=["queue", "key"], set_={"turn": statement.excluded.turn}
            ),
            values,
        )

    async def _fit(
        self, conn: AsyncConnection, rows: list[dict[str, Any]], now: datetime
    ) -> list[dict[str, Any]]:
        """The candidates (in order) that fit their slots, counting those taken before them."""
        slots = await slots_of(conn, [row["id"] for row in rows], limits_only=True)
        scopes = sorted({slot.scope for run_slots in slots.values() for slot in run_slots})
        # One dispatcher at a time counts a scope: the count and the claim are then one step.
        await lock_scopes(conn, scopes, is_sqlite=self.db.is_sqlite)
        used = await slot_use(conn, scopes, now)
        chosen = []
        for row in rows:
            run_slots = slots.get(row["id"], [])
            if all(used[slot.scope] < slot.limit for slot in run_slots):
                used.update(slot.scope for slot in run_slots)
                chosen.append({**row, "_slots": run_slots})
        return chosen

    async def _mark_claimed(self, conn: AsyncConnection, chosen: list[dict[str, Any]], now: datetime) -> None:
        ids = [row["id"] for row in chosen]
        await conn.execute(
            update(RUNS)
            .where(RUNS.c.id.in_(ids), RUNS.c.status == PENDING)
            .values(status=RunStatus.QUEUED.value, claimed_at=now, gate=_kept_gate, updated_at=now)
        )
        rated = [
            {"run": row["id"], "slot": slot.scope, "until": now + timedelta(seconds=slot.period or 0)}
            for row in chosen
            for slot in row["_slots"]
            if slot.kind == SlotKind.RATE
        ]
        if rated:
            await conn.execute(
                update(SLOTS)
                .where(SLOTS.c.run_id == bindparam("run"), SLOTS.c.scope == bindparam("slot"))
                .values(free_at=bindparam("until")),
                rated,
            )

    async def _renew(self, conn: AsyncConnection, lease: Lease, now: datetime) -> bool:
        until = now + timedelta(seconds=lease.seconds)
        renewed = await conn.execute(
            update(LEASES)
            .where(
                LEASES.c.name == lease.name,
                or_(LEASES.c.holder == lease.holder, LEASES.c.expires_at < now),
            )
            .values(holder=lease.holder, expires_at=until)
        )
        if getattr(renewed, "rowcount", 0):
            return True
        insert_lease = insert_ignoring_duplicates(LEASES, is_sqlite=self.db.is_sqlite)
        taken = await conn.execute(
            insert_lease, {"name": lease.name, "holder": lease.holder, "expires_at": until}
        )
        return bool(getattr(taken, "rowcount", 0))

    async def release_lease(self, lease: Lease) -> None:
        """Give ``lease`` up (a clean shutdown), so a standby takes over at once."""
        async with self.db.engine.begin() as conn:
            await conn.execute(
                update(LEASES)
                .where(LEASES.c.name == lease.name, LEASES.c.holder == lease.holder)
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )

    async def unclaim(self, run_ids: Sequence[str]) -> None:
        """Put claimed runs whose start failed (Temporal unavailable) back in the queue, in their place."""
        if run_ids:
            async with self.db.engine.begin() as conn:
                await conn.execute(
                    update(RUNS)
                    .where(
                        RUNS.c.id.in_(run_ids),
                        RUNS.c.status == RunStatus.QUEUED.value,
                        RUNS.c.dispatched_at.is_(None),
                    )
                    .values(status=PENDING, claimed_at=None, updated_at=utcnow())
                )
                await notify_queue(conn)

    async def cancel_waiting(self, run_id: str, why: str) -> bool:
        """Cancel a run that no dispatcher has taken yet, saying ``why``; False if one has (or it is not
        waiting)."""
        now = utcnow()
        async with self.db.engine.begin() as conn:
            result = await conn.execute(
                update(RUNS)
                .where(RUNS.c.id == run_id, RUNS.c.status == PENDING)
                .values(closed(RunStatus.CANCELLED, f"{why} (before it started)", now))
            )
        return bool(getattr(result, "rowcount", 0))

    async def cancel_when_started(self, run_id: str, why: str) -> bool:
        """Ask the dispatcher starting this run to cancel it once started (saying ``why``); False if it is
        not being started (its workflow exists already, or it was never claimed)."""
        async with self.db.engine.begin() as conn:
            result = await conn.execute(
                update(RUNS)
                .where(
                    RUNS.c.id == run_id,
                    RUNS.c.status == RunStatus.QUEUED.value,
                    RUNS.c.claimed_at.is_not(None),
                    RUNS.c.dispatched_at.is_(None),
                )
                .values(cancel_requested_at=utcnow(), cancel_reason=why)
            )
        return bool(getattr(result, "rowcount", 0))

    async def started(self, run_ids: Sequence[str]) -> None:
        """Note that the workflows of these claimed runs exist in Temporal."""
        if run_ids:
            async with self.db.engine.begin() as conn:
                await conn.execute(
                    update(RUNS)
                    .where(RUNS.c.id.in_(run_ids), RUNS.c.dispatched_at.is_(None))
                    .values(dispatched_at=utcnow())
                )

    async def cancellations(self, limit: int) -> list[tuple[RunRecord, str]]:
        """Started runs whose cancellation was asked for (cancel_on, a singleton's successor, a cancel
        while its start was in flight), each with who asked and why: the dispatcher cancels their
        workflows, passing that on (the workflow's record says it)."""
        statement = (
            select(RUNS)
            .where(
                RUNS.c.cancel_requested_at.is_not(None),
                RUNS.c.status.in_(ACTIVE),
                or_(RUNS.c.claimed_at.is_(None), RUNS.c.dispatched_at.is_not(None)),
            )
            .limit(limit)
        )
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(statement)).mappings()
            return [(record_of(dict(row), []), row["cancel_reason"] or "cancelled") for row in rows]

    async def cancel_sent(self, run_ids: Sequence[str]) -> None:
        """Temporal has these runs' cancellation requests (their workflows now close as cancelled)."""
        if run_ids:
            async with self.db.engine.begin() as conn:
                await conn.execute(
                    update(RUNS).where(RUNS.c.id.in_(run_ids)).values(cancel_requested_at=None)
                )

    async def unstarted(self, claimed_before: datetime, limit: int) -> list[RunRecord]:
        """Runs claimed before ``claimed_before`` whose start was never confirmed: their dispatcher died
        between the claim and the start. Starting them again is safe (the start is idempotent)."""
        statement = (
            select(RUNS)
            .where(
                RUNS.c.status == RunStatus.QUEUED.value,
                RUNS.c.dispatched_at.is_(None),
                RUNS.c.claimed_at < claimed_before,
            )
            .order_by(RUNS.c.claimed_at)
            .limit(limit)
        )
        async with self.db.engine.connect() as conn:
            rows = [dict(row) for row in (await conn.execute(statement)).mappings()]
            tags = await tags_of(conn, [row["id"] for row in rows])
        return [record_of(row, tags.get(row["id"], [])) for row in rows]

    async def expire(self) -> int:
        """Close the waiting runs whose TTL ran out before they started, as ``expired``."""
        now = utcnow()
        async with self.db.engine.begin() as conn:
            expired = list(
                await conn.scalars(
                    update(RUNS)
                    .where(RUNS.c.status == PENDING, RUNS.c.expires_at <= now)
                    .values(closed(RunStatus.EXPIRED, "expired: not started before its TTL ran out", now))
                    .returning(RUNS.c.id)
                )
            )
            await enqueue(conn, AlertKind.RUN_EXPIRED, [(run_id, run_id) for run_id in expired])
        return len(expired)

    async def next_due(self) -> datetime | None:
        """When the earliest delayed run (or TTL) comes due: how long an idle dispatcher may sleep."""
        now = utcnow()
        async with self.db.engine.connect() as conn:
            times = [
                await conn.scalar(select(func.min(column)).where(RUNS.c.status == PENDING, column > now))
                for column in (RUNS.c.not_before, RUNS.c.expires_at)
            ]
        due = [as_utc(t) for t in times if t is not None]
        return min((t for t in due if t is not None), default=None)
