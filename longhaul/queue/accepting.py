"""Accepting: planned runs (:class:`~longhaul.flow.RunPlan`) recorded as pending in one transaction, joined
to the open run of their gate, or answered with the run their event made before."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from longhaul.db import Database, as_utc, insert_ignoring_duplicates, lock_scopes, utcnow, writing
from longhaul.flow import INTAKE, Gate, JoinKind, RunPlan, Slot, SlotKind
from longhaul.group_commit import GroupCommit
from longhaul.humanize import duration
from longhaul.models import RunRecord, RunStatus, Via, generation_workflow_id, run_id_for
from longhaul.queue.signals import SignalPlan
from longhaul.queue.tables import (
    ACTIVE,
    PENDING,
    RUNS,
    SIGNALS,
    SLOTS,
    TAGS,
    WAITERS,
    closed,
    pauses_of,
)
from longhaul.records import notify_queue, record_of, tags_of


class IntakeRefusedError(RuntimeError):
    """Events over a refusing rate limit (``RateLimit(..., mode="refuse")``): nothing of the call was
    written; ``retry_after`` seconds from now, the limit has room for them."""

    def __init__(self, slot: Slot, retry_after: float) -> None:
        self.scope = slot.scope.removeprefix(INTAKE)
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(
            f"rate limited: at most {slot.limit} events per {duration(slot.period or 0)} of {self.scope}; "
            f"retry in {self.retry_after} s"
        )


@dataclass(frozen=True)
class Recorded:
    """What accepting one run did: ``written`` a new record, or reached ``record`` ``via`` another way
    (the same event before: "start"; an open run of its gate: "singleton", "debounce", "batch")."""

    record: RunRecord
    written: bool
    via: Via = "start"


Acceptance = tuple[list[Recorded], list[tuple[RunRecord, str]]]


def _changes(accepted: Acceptance) -> bool:
    """Whether accepting changed the queue (new runs, joined ones, cancelled ones): dispatchers wake."""
    results, cancelled = accepted
    return bool(cancelled) or any(r.written or r.via != "start" for r in results)


def _refusal(call: _Call, existing: dict[str, RunRecord], fresh: dict[str, RunPlan]) -> Exception | None:
    """Why ``call`` is refused as a whole, if it is: its check raised on a run that exists, or that an
    earlier run of its group (of an earlier call, or of its own) is to write. Otherwise its new runs join
    ``fresh``, the runs the group writes (the first of each id)."""
    added = []
    try:
        for run in call.runs:
            if call.check is not None:
                if run.id in existing:
                    call.check(existing[run.id], run)
                elif run.id in fresh:
                    call.check(record_of(_columns(fresh[run.id]), []), run)
            if run.id not in existing and run.id not in fresh:
                fresh[run.id] = run
                added.append(run.id)
    except Exception as refused:  # e.g. an event id reused with another payload: nothing of it is written
        for run_id in added:
            del fresh[run_id]
        return refused
    return None


@dataclass
class _Call:
    """One caller's runs waiting for the next group commit."""

    runs: list[RunPlan]
    cancels: dict[str, str]  # scope → who cancels its open runs, and why
    check: Callable[[RunRecord, RunPlan], None] | None
    signals: list[SignalPlan]  # routed to open runs, sent by a dispatcher
    waiter: str | None  # a run waiting for these runs to close (their parent), told by a dispatcher


def _columns(run: RunPlan, claimed_at: datetime | None = None) -> dict[str, Any]:
    """The ``runs`` row of a planned run: pending, or queued if ``claimed_at`` (claimed as accepted)."""
    return {
        "id": run.id,
        "tenant": run.tenant,
        "workflow": run.workflow,
        "workflow_id": run.workflow_id,
        "event": run.event,
        "event_id": run.event_id,
        "business_key": run.business_key,
        "generation": run.generation,
        "idempotency_key_expires_at": run.idempotency_key_expires_at,
        "replay_of": run.replay_of,
        "parent_run_id": run.parent_run_id,
        "root_run_id": run.root_run_id,
        "status": (RunStatus.QUEUED if claimed_at else RunStatus.PENDING).value,
        "queue": run.queue,
        "priority": run.priority,
        "fair_key": run.fair_key,
        "not_before": run.not_before,
        "expires_at": run.expires_at,
        "gate": run.gate.name if run.gate is not None else None,
        "claimed_at": claimed_at,
        "dispatched_at": None,
        "cancel_requested_at": None,
        "traceparent": run.traceparent,
        "progress": 0,
        "stage": None,
        "input": run.input,
        "output": None,
        "error": None,
        "attempts": 0,
        "created_at": run.created_at,
        "started_at": None,
        "finished_at": None,
        "updated_at": run.created_at,
    }


def _room_in(slot: Slot, taken: list[datetime], asked: int, now: datetime) -> float:
    """Seconds until ``asked`` more fit in the intake ``slot``, whose places are ``taken`` (sorted):
    when enough of them have left its period (a whole period, if the call alone is over the limit)."""
    period = slot.period or 0
    leaving = len(taken) + asked - slot.limit
    if asked > slot.limit or leaving > len(taken):
        return period
    return (taken[leaving - 1] + timedelta(seconds=period) - now).total_seconds()


def _key_expired(run: RunRecord, now: datetime) -> bool:
    """Whether the event id that made ``run`` may make a new run now (``idempotency_key_ttl``)."""
    return run.idempotency_key_expires_at is not None and run.idempotency_key_expires_at <= now


class Accepting:
    """The run queue's accepting part (see :class:`longhaul.queue.RunQueue`)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._insert_run = insert_ignoring_duplicates(RUNS, is_sqlite=db.is_sqlite)
        self._insert_signal = insert_ignoring_duplicates(SIGNALS, is_sqlite=db.is_sqlite)
        self._insert_waiter = insert_ignoring_duplicates(WAITERS, is_sqlite=db.is_sqlite)
        self._listeners: list[Callable[[], None]] = []
        self._group_commit = GroupCommit(self._write_group)
        self._taker: Callable[[list[RunRecord]], None] | None = None
        self._willing: Callable[[], int] = lambda: 0

    def on_accept(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after each commit of accepted runs (an in-process dispatcher wakes at once)."""
        self._listeners.append(listener)

    def hand_over(self, taker: Callable[[list[RunRecord]], None], willing: Callable[[], int]) -> None:
        """Claim at accept, for an idle dispatcher in this process: up to ``willing()`` of the runs an
        accept writes that are due now and have no limit to fit in are written claimed, and handed to
        ``taker`` once committed, so their start waits for no claim; the rest wait their turn in the
        queue (a batch of 1,000 must not jump it whole). Under a backlog (willing none) every run waits
        its turn in the queue's order. Runs handed to a process that dies before starting them are
        restarted like any orphaned claim."""
        self._taker, self._willing = taker, willing

    async def accept(
        self,
        runs: Sequence[RunPlan],
        cancels: Mapping[str, str] | None = None,
        *,
        check: Callable[[RunRecord, RunPlan], None] | None = None,
        signals: Sequence[SignalPlan] = (),
        waiter: str | None = None,
    ) -> Acceptance:
        """Record ``runs`` as pending, cancel the open runs with a slot or mark of ``cancels`` (but not
        these runs; each scope with what their records are to say) and keep the ``signals`` the events
        route to open runs (:mod:`longhaul.queue.signals`; the same one again is kept once) and, with
        ``waiter``, that run as waiting for each run these reach (a parent for its children: told when
        each closes), in one transaction. A run whose id
        exists already is not written again (``check`` sees it first and may refuse the whole call by
        raising: nothing of it is written); a run whose gate an open run holds joins that run. Returns
        what became of each run, and the runs cancelled with the scope that cancelled each.

        Group commit: calls that arrive while a transaction is being written are written together in the
        next one, their runs with one multi-row INSERT (and one for tags and slots). The round trips to
        the database, not the rows, are the cost of accepting; each caller still returns only once its
        runs are committed."""
        call = _Call(list(runs), dict(cancels or {}), check, list(signals), waiter)
        return await self._group_commit.submit(call)

    async def _write_group(self, group: list[_Call]) -> list[Acceptance | Exception]:
        handed: list[RunRecord] = []
        async with writing(self.db) as conn:
            outcomes = await self._accept_group(conn, group, handed)
            changed = any(
                not isinstance(o, Exception) and (_changes(o) or call.signals or call.waiter)
                for call, o in zip(group, outcomes, strict=True)
            )
            if changed:
                await notify_queue(conn)
        if handed and self._taker is not None:
            self._taker(handed)
        if changed:
            for listener in self._listeners:
                listener()
        return outcomes

    async def _accept_group(
        self, conn: AsyncConnection, group: list[_Call], handed: list[RunRecord]
    ) -> list[Acceptance | Exception]:
        existing = await self._records_of(conn, [run.id for call in group for run in call.runs])
        await self._follow_expired_keys(conn, group, existing)
        fresh: dict[str, RunPlan] = {}
        refusals = [_refusal(call, existing, fresh) for call in group]
        now = utcnow()
        await self._refuse_over_intake(conn, group, refusals, fresh, now)
        room = self._willing() if self._taker is not None else 0
        startable = [run for run in fresh.values() if room and run.startable_at_once(now)]
        if startable:  # a paused queue's runs wait in it
            held = await pauses_of(conn, {run.queue for run in startable})
            startable = [
                run for run in startable if not {(run.queue, ""), (run.queue, run.tenant)} & held.keys()
            ]
        claimed = {run.id for run in startable[:room]}
        written = await self._insert(conn, list(fresh.values()), claimed, now)
        signals = [plan.row(now) for call, no in zip(group, refusals, strict=True) if no is None
                   for plan in call.signals]  # fmt: skip
        if signals:
            await conn.execute(self._insert_signal, signals)
        for run_id in written:
            run = fresh[run_id]
            existing[run_id] = record_of(
                _columns(run, now if run_id in claimed else None), sorted(set(run.tags))
            )
            if run_id in claimed:
                handed.append(existing[run_id])
        first = set(written)  # a run id two calls share is written by the first, reached by the second
        outcomes = [
            refused or await self._answer(conn, call, existing, first)
            for call, refused in zip(group, refusals, strict=True)
        ]
        waiting = [
            {"run_id": reached.record.id, "waiter_run_id": call.waiter, "created_at": now,
             "notified_at": None}
            for call, outcome in zip(group, outcomes, strict=True)
            if call.waiter is not None and not isinstance(outcome, Exception)
            for reached in outcome[0]
        ]  # fmt: skip
        if waiting:  # the same parent and child again (a retried trigger) is kept once
            await conn.execute(self._insert_waiter, waiting)
        return outcomes

    async def _refuse_over_intake(
        self,
        conn: AsyncConnection,
        group: list[_Call],
        refusals: list[Exception | None],
        fresh: dict[str, RunPlan],
        now: datetime,
    ) -> None:
        """Refuse, in the group's order, each call whose new runs would take an intake scope (a refusing
        rate limit) over its limit: counted from the runs of the scope accepted within its period, and
        those of the group's calls before it. On PostgreSQL the scopes are locked (in one order) first,
        so two API processes never both take a scope's last place."""
        limited = {
            slot.scope: slot for run in fresh.values() for slot in run.slots if slot.kind == SlotKind.INTAKE
        }
        if not limited:
            return
        taken = await self._intake_taken(conn, limited, now)
        for index, call in enumerate(group):
            mine = [run for run in call.runs if fresh.get(run.id) is run]
            asked = Counter(slot.scope for run in mine for slot in run.slots if slot.kind == SlotKind.INTAKE)
            if refusals[index] is not None or not asked:
                continue
            over = [scope for scope, n in asked.items() if len(taken[scope]) + n > limited[scope].limit]
            if over:
                slot = limited[over[0]]
                refusals[index] = IntakeRefusedError(
                    slot, _room_in(slot, sorted(taken[slot.scope]), asked[slot.scope], now)
                )
                for run in mine:
                    del fresh[run.id]
            else:
                for scope, n in asked.items():
                    taken[scope] += [now] * n

    async def _intake_taken(
        self, conn: AsyncConnection, limited: dict[str, Slot], now: datetime
    ) -> dict[str, list[datetime]]:
        """When each run of the intake scopes ``limited`` accepted within its period was accepted."""
        await lock_scopes(conn, sorted(limited), is_sqlite=self.db.is_sqlite)
        since = now - timedelta(seconds=max(slot.period or 0 for slot in limited.values()))
        rows = await conn.execute(
            select(SLOTS.c.scope, RUNS.c.created_at)
            .join(RUNS, RUNS.c.id == SLOTS.c.run_id)
            .where(SLOTS.c.scope.in_(list(limited)), RUNS.c.created_at > since)
        )
        taken: dict[str, list[datetime]] = {scope: [] for scope in limited}
        for scope, at in rows:
            if (at := as_utc(at)) is not None and at > now - timedelta(seconds=limited[scope].period or 0):
                taken[scope].append(at)
        return taken

    async def _follow_expired_keys(
        self, conn: AsyncConnection, group: list[_Call], existing: dict[str, RunRecord]
    ) -> None:
        """Point each run whose event id reached a run with an expired idempotency key at the newest run
        of that id, or, if its key expired too, at the next generation (a new run). The generation is in
        the event's unique key: two accepts making the same one write it once."""
        now = utcnow()
        for run in (run for call in group for run in call.runs if run.gate is None):
            first = existing.get(run.id)
            if first is None or not _key_expired(first, now):
                continue
            newest = await self._newest_generation(conn, first)
            if _key_expired(newest, now):
                generation = newest.generation + 1
                workflow_id = generation_workflow_id(first.workflow_id, generation)
                run.id, run.workflow_id, run.generation = run_id_for(workflow_id), workflow_id, generation
            else:
                existing[newest.id] = newest
                run.id, run.workflow_id, run.generation = newest.id, newest.workflow_id, newest.generation

    async def _newest_generation(self, conn: AsyncConnection, first: RunRecord) -> RunRecord:
        row = await self._row(
            conn,
            RUNS.c.tenant == first.tenant,
            RUNS.c.event == first.event,
            RUNS.c.event_id == first.event_id,
            RUNS.c.workflow == first.workflow,
            order_by=RUNS.c.generation.desc(),
        )
        assert row is not None  # ``first`` itself at least
        return await self._existing(conn, row)

    async def _answer(
        self, conn: AsyncConnection, call: _Call, existing: dict[str, RunRecord], first: set[str]
    ) -> Acceptance:
        """What became of one call's runs (after the group's insert), and the runs its cancels closed."""
        results = []
        for run in call.runs:
            if run.id in first:
                first.discard(run.id)
                results.append(Recorded(existing[run.id], True))
            elif run.id in existing:
                results.append(Recorded(existing[run.id], False))
            else:  # its gate is held by an open run: it joins that one
                results.append(await self._record(conn, run))
        keep, now = {r.record.id for r in results}, utcnow()
        cancelled = [
            (record, scope)
            for scope, why in call.cancels.items()
            for record in await self._cancel_marked(conn, scope, why, keep, now)
        ]
        return results, cancelled

    async def _records_of(self, conn: AsyncConnection, run_ids: list[str]) -> dict[str, RunRecord]:
        """The runs among ``run_ids`` that exist, with their tags."""
        rows = (await conn.execute(select(RUNS).where(RUNS.c.id.in_(run_ids)))).mappings().all()
        tags = await tags_of(conn, [row["id"] for row in rows])
        return {row["id"]: record_of(dict(row), tags.get(row["id"], [])) for row in rows}

    async def _insert(
        self,
        conn: AsyncConnection,
        runs: list[RunPlan],
        claimed: set[str] | None = None,
        now: datetime | None = None,
    ) -> set[str]:
        """Insert ``runs`` (one statement; those of ``claimed`` claimed at ``now``), their tags and slots;
        the ids written (a run whose gate is held by another is not)."""
        if not runs:
            return set()
        claimed = claimed or set()
        rows = [_columns(run, now if run.id in claimed else None) for run in runs]
        written = set(await conn.scalars(self._insert_run.returning(RUNS.c.id), rows))
        tags = [{"run_id": run.id, "tag": tag} for run in runs if run.id in written for tag in set(run.tags)]
        if tags:
            await conn.execute(insert(TAGS), tags)
        slots = [
            {
                "run_id": run.id,
                "scope": slot.scope,
                "kind": slot.kind.value,
                "limit": slot.limit,
                "period_ms": round(slot.period * 1000) if slot.period else None,
            }
            for run in runs
            if run.id in written
            for slot in run.slots
        ]
        if slots:
            await conn.execute(insert(SLOTS), slots)
        return written

    async def _record(self, conn: AsyncConnection, run: RunPlan) -> Recorded:
        for _ in range(3):  # again if the gate's run was claimed between the insert and the join
            if await self._insert(conn, [run]):
                return Recorded(record_of(_columns(run), sorted(set(run.tags))), True)
            existing = await self._row(conn, RUNS.c.id == run.id)
            if existing is not None:
                return Recorded(await self._existing(conn, existing), False)
            if run.gate is None:  # a different run holds a unique key of this one: a caller's bug
                raise LookupError(f"run {run.id} conflicts with another run's unique key")
            joined = await self._join(conn, run, run.gate)
            if joined is not None:
                return Recorded(joined, False, run.gate.kind.value)
        raise RuntimeError(f"run {run.id}: its gate changed hands three times")

    async def _row(
        self, conn: AsyncConnection, *where: Any, lock: bool = False, order_by: Any = None
    ) -> dict[str, Any] | None:
        statement = select(RUNS).where(*where).order_by(order_by).limit(1)
        if lock and not self.db.is_sqlite:
            statement = statement.with_for_update()
        row = (await conn.execute(statement)).mappings().first()
        return dict(row) if row is not None else None

    async def _join(self, conn: AsyncConnection, run: RunPlan, gate: Gate) -> RunRecord | None:
        """Join the open run holding ``run``'s gate; None if none holds it any more."""
        holder = await self._row(conn, RUNS.c.gate == gate.name, lock=True)
        if holder is None:
            return None
        now = utcnow()
        changes: dict[str, Any] = {}
        if gate.kind == JoinKind.DEBOUNCE:
            due = now + gate.delay
            first = as_utc(holder["created_at"])
            if gate.max_delay is not None and first is not None:
                due = min(due, first + gate.max_delay)
            changes["not_before"] = due
            if gate.take_payload:
                changes["input"] = run.input
        if gate.kind == JoinKind.BATCH or gate.collect:
            batch = dict(holder["input"])
            if run.event_id not in batch["event_ids"]:  # a resent member is not added twice
                batch["events"] = [*batch["events"], *run.input["events"]]
                batch["event_ids"] = [*batch["event_ids"], run.event_id]
            changes["input"] = batch
            if len(batch["events"]) >= gate.max_size:  # full: due now, and closed to new members
                changes.update(not_before=now, gate=None)
        if changes:
            await conn.execute(
                update(RUNS).where(RUNS.c.id == holder["id"]).values(**changes, updated_at=now)
            )
        return await self._existing(conn, {**holder, **changes})

    async def _cancel_marked(
        self, conn: AsyncConnection, scope: str, why: str, keep: set[str], now: datetime
    ) -> list[RunRecord]:
        """Cancel the open runs with slot or mark ``scope`` (but those in ``keep``), saying ``why``: a waiting
        one at once, a started one by asking its dispatcher (:meth:`cancellations`)."""
        marked = select(SLOTS.c.run_id).where(SLOTS.c.scope == scope)
        statement = select(RUNS).where(
            RUNS.c.id.in_(marked), RUNS.c.status.in_([PENDING, *ACTIVE]), RUNS.c.id.not_in(keep)
        )
        rows = [dict(row) for row in (await conn.execute(statement)).mappings()]
        for row in rows:
            values: dict[str, Any] = {"cancel_requested_at": now, "cancel_reason": why}
            if row["status"] == PENDING:
                values = closed(RunStatus.CANCELLED, f"{why} (before it started)", now)
            row.update(values)
            await conn.execute(update(RUNS).where(RUNS.c.id == row["id"]).values(**values))
        return [record_of(row, []) for row in rows]

    async def _existing(self, conn: AsyncConnection, row: dict[str, Any]) -> RunRecord:
        tags = (await conn.scalars(select(TAGS.c.tag).where(TAGS.c.run_id == row["id"]))).all()
        return record_of(row, sorted(tags))
