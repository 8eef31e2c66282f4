"""The run queue: what lies between accepting an event and starting its workflow in Temporal.

Accepting an event is one transaction here (:meth:`RunQueue.accept`): a ``pending`` run record per
subscription, with the *slots* its subscription's flow control asks for (:mod:`longhaul.flow`). Dispatchers
(:mod:`longhaul.server.dispatcher`) then :meth:`~RunQueue.claim` due runs in priority then arrival order, only
where every slot has room, mark them ``queued`` and start their workflows behind.

A slot is a named scope with a limit (``video-processing/user_id=42``):

- ``concurrency``: at most ``limit`` runs of the scope started and not closed. Nothing is counted up or
  down: the claim counts the scope's runs whose record is ``queued`` or ``running``, so a slot frees the
  moment its run's record closes, and the reconcile sweep (which closes the records of runs whose
  workflow closed without telling) repairs every slot with them.
- ``rate``: at most ``limit`` starts per ``period``: each claim marks its slot busy until claim time +
  period. A throttle (starts spread evenly) is a rate of 1 per ``period / limit``.

One run per ``gate`` may be open at a time (debounce, batch): a unique column, so two API processes
accepting the same key at once cannot open two.

PostgreSQL: any number of dispatchers claim together: candidate rows are locked ``FOR UPDATE SKIP
LOCKED``, and the scopes they count are locked with transaction advisory locks (in one order, so no
deadlock) before counting, so two dispatchers never both take a scope's last slot. New work and freed
slots are announced with ``NOTIFY``. SQLite: one dispatcher holds a lease (:meth:`RunQueue.claim` renews
it in the claim's own write transaction); the others stand by.
"""

from __future__ import annotations

import asyncio
import builtins
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    or_,
    select,
    union,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from longhaul.alerts import enqueue
from longhaul.db import Base, Database, as_utc, insert_ignoring_duplicates, utcnow
from longhaul.flow import Gate, JoinKind, RunPlan, Slot, SlotKind, gate_name
from longhaul.models import (
    ACTIVE_STATUSES,
    WAITING_STATUSES,
    AlertKind,
    RunRecord,
    RunStatus,
    Via,
    generation_workflow_id,
    run_id_for,
)
from longhaul.storage import RunRow, RunTagRow, notify_queue, record_of, tags_of

_ACTIVE = [s.value for s in ACTIVE_STATUSES]
_PENDING = RunStatus.PENDING.value


class RunSlotRow(Base):
    __tablename__ = "run_slots"
    __table_args__ = (Index("ix_run_slots_rate", "kind", "free_at"),)

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    scope: Mapped[str] = mapped_column(String(300), primary_key=True, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    limit: Mapped[int] = mapped_column(Integer)
    # A month is past 32 bits on PostgreSQL; SQLite's INTEGER has 64.
    period_ms: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    free_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # a rate slot, once claimed


class LeaseRow(Base):
    """Who holds a role that only one process may hold at a time on SQLite (the dispatcher)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


_RUNS = cast(Table, RunRow.__table__)
_TAGS = cast(Table, RunTagRow.__table__)
_SLOTS = cast(Table, RunSlotRow.__table__)
_LEASES = cast(Table, LeaseRow.__table__)


@dataclass(frozen=True)
class Recorded:
    """What accepting one run did: ``written`` a new record, or reached ``record`` ``via`` another way
    (the same event before: "start"; an open run of its gate: "singleton", "debounce", "batch")."""

    record: RunRecord
    written: bool
    via: Via = "start"


Accepted = tuple[builtins.list[Recorded], builtins.list[tuple[RunRecord, str]]]


def _changes(accepted: Accepted) -> bool:
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


def _settle(done: asyncio.Future[Accepted], outcome: Accepted | Exception) -> None:
    if done.done():
        return
    if isinstance(outcome, Exception):
        done.set_exception(outcome)
    else:
        done.set_result(outcome)


@dataclass
class _Call:
    """One caller's runs waiting for the next group commit."""

    runs: builtins.list[RunPlan]
    cancels: dict[str, str]  # scope → who cancels its open runs, and why
    check: Callable[[RunRecord, RunPlan], None] | None
    done: asyncio.Future[Accepted]


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
    runs = _RUNS.alias("active_runs")
    full = (
        select(_SLOTS.c.scope)
        .join(runs, runs.c.id == _SLOTS.c.run_id)
        .where(_SLOTS.c.kind == SlotKind.CONCURRENCY.value, runs.c.status.in_(_ACTIVE))
        .group_by(_SLOTS.c.scope)
        .having(func.count() >= func.min(_SLOTS.c.limit))
    )
    spent = (
        select(_SLOTS.c.scope)
        .where(_SLOTS.c.kind == SlotKind.RATE.value, _SLOTS.c.free_at > now)
        .group_by(_SLOTS.c.scope)
        .having(func.count() >= func.min(_SLOTS.c.limit))
    )
    return union(full, spent)


# A claimed run takes no more events into it (debounce, batch); it stays its key's singleton until it closes.
_kept_gate = case((_RUNS.c.gate.like(gate_name(JoinKind.SINGLETON, "%")), _RUNS.c.gate), else_=None)


def _closed(status: RunStatus, error: str, now: datetime) -> dict[str, Any]:
    """The column values of a waiting run closed without ever starting (cancelled, expired)."""
    return {
        "status": status.value,
        "stage": status.value,
        "error": error,
        "gate": None,
        "finished_at": now,
        "updated_at": now,
    }


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
        "status": (RunStatus.QUEUED if claimed_at else RunStatus.PENDING).value,
        "queue": run.queue,
        "priority": run.priority,
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


def _key_expired(run: RunRecord, now: datetime) -> bool:
    """Whether the event id that made ``run`` may make a new run now (``idempotency_key_ttl``)."""
    return run.idempotency_key_expires_at is not None and run.idempotency_key_expires_at <= now


def _due(now: datetime) -> tuple[Any, ...]:
    return (
        _RUNS.c.status == _PENDING,
        or_(_RUNS.c.not_before.is_(None), _RUNS.c.not_before <= now),
        or_(_RUNS.c.expires_at.is_(None), _RUNS.c.expires_at > now),
    )


class RunQueue:
    """Accepts runs and hands them to dispatchers. One per process, sharing the process's database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._insert_run = insert_ignoring_duplicates(_RUNS, is_sqlite=db.is_sqlite)
        self._listeners: builtins.list[Callable[[], None]] = []
        self._calls: builtins.list[_Call] = []
        self._acceptor: asyncio.Task[None] | None = None
        self._taker: Callable[[builtins.list[RunRecord]], None] | None = None
        self._willing: Callable[[], bool] = lambda: False

    def on_accept(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after each commit of accepted runs (an in-process dispatcher wakes at once)."""
        self._listeners.append(listener)

    def hand_over(
        self, taker: Callable[[builtins.list[RunRecord]], None], willing: Callable[[], bool]
    ) -> None:
        """Claim at accept, for an idle dispatcher in this process: while ``willing()``, the runs an accept
        writes that are due now and have no limit to fit in are written claimed, and handed to ``taker``
        once committed, so their start waits for no claim. Under a backlog (not willing) every run waits
        its turn in the queue's order. Runs handed to a process that dies before starting them are
        restarted like any orphaned claim."""
        self._taker, self._willing = taker, willing

    # -- accepting ------------------------------------------------------------------------------------------

    async def accept(
        self,
        runs: Sequence[RunPlan],
        cancels: Mapping[str, str] | None = None,
        *,
        check: Callable[[RunRecord, RunPlan], None] | None = None,
    ) -> Accepted:
        """Record ``runs`` as pending and cancel the open runs with a slot or mark of ``cancels`` (but not
        these runs; each scope with what their records are to say), in one transaction. A run whose id
        exists already is not written again (``check`` sees it first and may refuse the whole call by
        raising: nothing of it is written); a run whose gate an open run holds joins that run. Returns
        what became of each run, and the runs cancelled with the scope that cancelled each.

        Group commit: calls that arrive while a transaction is being written are written together in the
        next one, their runs with one multi-row INSERT (and one for tags and slots). The round trips to
        the database, not the rows, are the cost of accepting; each caller still returns only once its
        runs are committed."""
        call = _Call(list(runs), dict(cancels or {}), check, asyncio.get_running_loop().create_future())
        self._calls.append(call)
        if self._acceptor is None or self._acceptor.done():
            self._acceptor = asyncio.create_task(self._accept_queued())
        return await call.done

    async def _accept_queued(self) -> None:
        while self._calls:
            group, self._calls = self._calls, []
            handed: builtins.list[RunRecord] = []
            try:
                async with self._writing() as conn:
                    outcomes = await self._accept_group(conn, group, handed)
                    changed = any(not isinstance(o, Exception) and _changes(o) for o in outcomes)
                    if changed:
                        await notify_queue(conn)
            except Exception as error:  # the transaction failed (e.g. storage down): each caller retries
                outcomes, changed, handed = [error] * len(group), False, []
            if handed and self._taker is not None:
                self._taker(handed)
            if changed:
                for listener in self._listeners:
                    listener()
            for call, outcome in zip(group, outcomes, strict=True):
                _settle(call.done, outcome)

    async def _accept_group(
        self, conn: AsyncConnection, group: builtins.list[_Call], handed: builtins.list[RunRecord]
    ) -> builtins.list[Accepted | Exception]:
        existing = await self._records_of(conn, [run.id for call in group for run in call.runs])
        await self._follow_expired_keys(conn, group, existing)
        fresh: dict[str, RunPlan] = {}
        refusals = [_refusal(call, existing, fresh) for call in group]
        claiming = self._taker is not None and self._willing()
        now = utcnow()
        claimed = {run.id for run in fresh.values() if claiming and run.startable_at_once(now)}
        written = await self._insert(conn, list(fresh.values()), claimed, now)
        for run_id in written:
            run = fresh[run_id]
            existing[run_id] = record_of(
                _columns(run, now if run_id in claimed else None), sorted(set(run.tags))
            )
            if run_id in claimed:
                handed.append(existing[run_id])
        first = set(written)  # a run id two calls share is written by the first, reached by the second
        return [
            refused or await self._answer(conn, call, existing, first)
            for call, refused in zip(group, refusals, strict=True)
        ]

    async def _follow_expired_keys(
        self, conn: AsyncConnection, group: builtins.list[_Call], existing: dict[str, RunRecord]
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
            _RUNS.c.tenant == first.tenant,
            _RUNS.c.event == first.event,
            _RUNS.c.event_id == first.event_id,
            _RUNS.c.workflow == first.workflow,
            order_by=_RUNS.c.generation.desc(),
        )
        assert row is not None  # ``first`` itself at least
        return await self._existing(conn, row)

    async def _answer(
        self, conn: AsyncConnection, call: _Call, existing: dict[str, RunRecord], first: set[str]
    ) -> Accepted:
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

    async def _records_of(self, conn: AsyncConnection, run_ids: builtins.list[str]) -> dict[str, RunRecord]:
        """The runs among ``run_ids`` that exist, with their tags."""
        rows = (await conn.execute(select(_RUNS).where(_RUNS.c.id.in_(run_ids)))).mappings().all()
        tags = await tags_of(conn, [row["id"] for row in rows])
        return {row["id"]: record_of(dict(row), tags.get(row["id"], [])) for row in rows}

    async def _insert(
        self,
        conn: AsyncConnection,
        runs: builtins.list[RunPlan],
        claimed: set[str] | None = None,
        now: datetime | None = None,
    ) -> set[str]:
        """Insert ``runs`` (one statement; those of ``claimed`` claimed at ``now``), their tags and slots;
        the ids written (a run whose gate is held by another is not)."""
        if not runs:
            return set()
        claimed = claimed or set()
        rows = [_columns(run, now if run.id in claimed else None) for run in runs]
        written = set(await conn.scalars(self._insert_run.returning(_RUNS.c.id), rows))
        tags = [{"run_id": run.id, "tag": tag} for run in runs if run.id in written for tag in set(run.tags)]
        if tags:
            await conn.execute(insert(_TAGS), tags)
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
            await conn.execute(insert(_SLOTS), slots)
        return written

    async def _record(self, conn: AsyncConnection, run: RunPlan) -> Recorded:
        for _ in range(3):  # again if the gate's run was claimed between the insert and the join
            if await self._insert(conn, [run]):
                return Recorded(record_of(_columns(run), sorted(set(run.tags))), True)
            existing = await self._row(conn, _RUNS.c.id == run.id)
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
        statement = select(_RUNS).where(*where).order_by(order_by).limit(1)
        if lock and not self.db.is_sqlite:
            statement = statement.with_for_update()
        row = (await conn.execute(statement)).mappings().first()
        return dict(row) if row is not None else None

    async def _join(self, conn: AsyncConnection, run: RunPlan, gate: Gate) -> RunRecord | None:
        """Join the open run holding ``run``'s gate; None if none holds it any more."""
        holder = await self._row(conn, _RUNS.c.gate == gate.name, lock=True)
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
        elif gate.kind == JoinKind.BATCH:
            batch = dict(holder["input"])
            if run.event_id not in batch["event_ids"]:  # a resent member is not added twice
                batch["events"] = [*batch["events"], *run.input["events"]]
                batch["event_ids"] = [*batch["event_ids"], run.event_id]
            changes["input"] = batch
            if len(batch["events"]) >= gate.max_size:  # full: due now, and closed to new members
                changes.update(not_before=now, gate=None)
        if changes:
            await conn.execute(
                update(_RUNS).where(_RUNS.c.id == holder["id"]).values(**changes, updated_at=now)
            )
        return await self._existing(conn, {**holder, **changes})

    async def _cancel_marked(
        self, conn: AsyncConnection, scope: str, why: str, keep: set[str], now: datetime
    ) -> builtins.list[RunRecord]:
        """Cancel the open runs with slot or mark ``scope`` (but those in ``keep``), saying ``why``: a waiting
        one at once, a started one by asking its dispatcher (:meth:`cancellations`)."""
        marked = select(_SLOTS.c.run_id).where(_SLOTS.c.scope == scope)
        statement = select(_RUNS).where(
            _RUNS.c.id.in_(marked), _RUNS.c.status.in_([_PENDING, *_ACTIVE]), _RUNS.c.id.not_in(keep)
        )
        rows = [dict(row) for row in (await conn.execute(statement)).mappings()]
        for row in rows:
            values: dict[str, Any] = {"cancel_requested_at": now, "cancel_reason": why}
            if row["status"] == _PENDING:
                values = _closed(RunStatus.CANCELLED, f"{why} (before it started)", now)
            row.update(values)
            await conn.execute(update(_RUNS).where(_RUNS.c.id == row["id"]).values(**values))
        return [record_of(row, []) for row in rows]

    async def _existing(self, conn: AsyncConnection, row: dict[str, Any]) -> RunRecord:
        tags = (await conn.scalars(select(_TAGS.c.tag).where(_TAGS.c.run_id == row["id"]))).all()
        return record_of(row, sorted(tags))

    # -- dispatching ----------------------------------------------------------------------------------------

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that reads, then writes: on SQLite it takes the write lock at BEGIN (IMMEDIATE).
        A deferred one would start as a reader, and SQLite refuses at once ("database is locked", no
        busy wait) to upgrade a reader whose snapshot another connection's commit has made stale."""
        async with self.db.engine.connect() as conn:
            if self.db.is_sqlite:
                conn = await conn.execution_options(sqlite_begin="IMMEDIATE")
            async with conn.begin():
                yield conn

    async def claim(self, limit: int, *, lease: Lease | None = None) -> builtins.list[RunRecord]:
        """Take up to ``limit`` due runs whose slots all have room, in priority then arrival order, and
        mark them ``queued`` (claimed, not yet started). Raises LeaseLostError if ``lease`` is held by
        another dispatcher."""
        now = utcnow()
        async with self._writing() as conn:
            if lease is not None and not await self._renew(conn, lease, now):
                raise LeaseLostError(lease.name)
            busy = _busy_scopes(now).subquery()
            blocked = exists().where(_SLOTS.c.run_id == _RUNS.c.id, _SLOTS.c.scope.in_(select(busy.c.scope)))
            candidates = (
                select(_RUNS)
                .where(*_due(now), ~blocked)
                .order_by(_RUNS.c.priority, _RUNS.c.created_at, _RUNS.c.id)
                .limit(limit)
            )
            if not self.db.is_sqlite:
                candidates = candidates.with_for_update(skip_locked=True, of=_RUNS)
            rows = [dict(row) for row in (await conn.execute(candidates)).mappings()]
            if not rows:
                return []
            chosen = await self._fit(conn, rows, now)
            if chosen:
                await self._mark_claimed(conn, chosen, now)
            tags = await tags_of(conn, [row["id"] for row in chosen])  # the start sets them in Temporal
        return [
            record_of({**row, "status": RunStatus.QUEUED.value, "claimed_at": now}, tags.get(row["id"], []))
            for row in chosen
        ]

    async def _fit(
        self, conn: AsyncConnection, rows: builtins.list[dict[str, Any]], now: datetime
    ) -> builtins.list[dict[str, Any]]:
        """The candidates (in order) that fit their slots, counting those taken before them."""
        slots = await self._slots_of(conn, [row["id"] for row in rows], limits_only=True)
        scopes = sorted({slot.scope for run_slots in slots.values() for slot in run_slots})
        if scopes and not self.db.is_sqlite:
            # One dispatcher at a time counts a scope: the count and the claim are then one step.
            for scope in scopes:
                await conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(scope))))
        used = await self._used(conn, scopes, now)
        chosen = []
        for row in rows:
            run_slots = slots.get(row["id"], [])
            if all(used[slot.scope] < slot.limit for slot in run_slots):
                used.update(slot.scope for slot in run_slots)
                chosen.append({**row, "_slots": run_slots})
        return chosen

    async def _slots_of(
        self, conn: AsyncConnection, run_ids: builtins.list[str], *, limits_only: bool = False
    ) -> dict[str, builtins.list[Slot]]:
        slots: dict[str, builtins.list[Slot]] = {}
        statement = select(_SLOTS).where(_SLOTS.c.run_id.in_(run_ids))
        if limits_only:
            statement = statement.where(_SLOTS.c.kind != SlotKind.MARK.value)
        for row in (await conn.execute(statement)).mappings():
            period = row["period_ms"] / 1000 if row["period_ms"] is not None else None
            slot = Slot(row["scope"], SlotKind(row["kind"]), row["limit"], period)
            slots.setdefault(row["run_id"], []).append(slot)
        return slots

    async def _used(self, conn: AsyncConnection, scopes: builtins.list[str], now: datetime) -> Counter[str]:
        """Per scope, how much of its limit is taken now: active runs, or starts within the period."""
        used: Counter[str] = Counter()
        if not scopes:
            return used
        active = (
            select(_SLOTS.c.scope, func.count())
            .join(_RUNS, _RUNS.c.id == _SLOTS.c.run_id)
            .where(
                _SLOTS.c.scope.in_(scopes),
                _SLOTS.c.kind == SlotKind.CONCURRENCY.value,
                _RUNS.c.status.in_(_ACTIVE),
            )
            .group_by(_SLOTS.c.scope)
        )
        recent = (
            select(_SLOTS.c.scope, func.count())
            .where(_SLOTS.c.scope.in_(scopes), _SLOTS.c.kind == SlotKind.RATE.value, _SLOTS.c.free_at > now)
            .group_by(_SLOTS.c.scope)
        )
        for statement in (active, recent):
            for scope, count in await conn.execute(statement):
                used[scope] += count
        return used

    async def _mark_claimed(
        self, conn: AsyncConnection, chosen: builtins.list[dict[str, Any]], now: datetime
    ) -> None:
        ids = [row["id"] for row in chosen]
        await conn.execute(
            update(_RUNS)
            .where(_RUNS.c.id.in_(ids), _RUNS.c.status == _PENDING)
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
                update(_SLOTS)
                .where(_SLOTS.c.run_id == bindparam("run"), _SLOTS.c.scope == bindparam("slot"))
                .values(free_at=bindparam("until")),
                rated,
            )

    async def _renew(self, conn: AsyncConnection, lease: Lease, now: datetime) -> bool:
        until = now + timedelta(seconds=lease.seconds)
        renewed = await conn.execute(
            update(_LEASES)
            .where(
                _LEASES.c.name == lease.name,
                or_(_LEASES.c.holder == lease.holder, _LEASES.c.expires_at < now),
            )
            .values(holder=lease.holder, expires_at=until)
        )
        if getattr(renewed, "rowcount", 0):
            return True
        insert_lease = insert_ignoring_duplicates(_LEASES, is_sqlite=self.db.is_sqlite)
        taken = await conn.execute(
            insert_lease, {"name": lease.name, "holder": lease.holder, "expires_at": until}
        )
        return bool(getattr(taken, "rowcount", 0))

    async def release_lease(self, lease: Lease) -> None:
        """Give ``lease`` up (a clean shutdown), so a standby takes over at once."""
        async with self.db.engine.begin() as conn:
            await conn.execute(
                update(_LEASES)
                .where(_LEASES.c.name == lease.name, _LEASES.c.holder == lease.holder)
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )

    async def unclaim(self, run_ids: Sequence[str]) -> None:
        """Put claimed runs whose start failed (Temporal unavailable) back in the queue, in their place."""
        if run_ids:
            async with self.db.engine.begin() as conn:
                await conn.execute(
                    update(_RUNS)
                    .where(
                        _RUNS.c.id.in_(run_ids),
                        _RUNS.c.status == RunStatus.QUEUED.value,
                        _RUNS.c.dispatched_at.is_(None),
                    )
                    .values(status=_PENDING, claimed_at=None, updated_at=utcnow())
                )
                await notify_queue(conn)

    async def cancel_waiting(self, run_id: str, why: str) -> bool:
        """Cancel a run that no dispatcher has taken yet, saying ``why``; False if one has (or it is not
        waiting)."""
        now = utcnow()
        async with self.db.engine.begin() as conn:
            result = await conn.execute(
                update(_RUNS)
                .where(_RUNS.c.id == run_id, _RUNS.c.status == _PENDING)
                .values(_closed(RunStatus.CANCELLED, f"{why} (before it started)", now))
            )
        return bool(getattr(result, "rowcount", 0))

    async def cancel_when_started(self, run_id: str, why: str) -> bool:
        """Ask the dispatcher starting this run to cancel it once started (saying ``why``); False if it is
        not being started (its workflow exists already, or it was never claimed)."""
        async with self.db.engine.begin() as conn:
            result = await conn.execute(
                update(_RUNS)
                .where(
                    _RUNS.c.id == run_id,
                    _RUNS.c.status == RunStatus.QUEUED.value,
                    _RUNS.c.claimed_at.is_not(None),
                    _RUNS.c.dispatched_at.is_(None),
                )
                .values(cancel_requested_at=utcnow(), cancel_reason=why)
            )
        return bool(getattr(result, "rowcount", 0))

    async def started(self, run_ids: Sequence[str]) -> None:
        """Note that the workflows of these claimed runs exist in Temporal."""
        if run_ids:
            async with self.db.engine.begin() as conn:
                await conn.execute(
                    update(_RUNS)
                    .where(_RUNS.c.id.in_(run_ids), _RUNS.c.dispatched_at.is_(None))
                    .values(dispatched_at=utcnow())
                )

    async def cancellations(self, limit: int) -> builtins.list[tuple[RunRecord, str]]:
        """Started runs whose cancellation was asked for (cancel_on, a singleton's successor, a cancel
        while its start was in flight), each with who asked and why: the dispatcher cancels their
        workflows, passing that on (the workflow's record says it)."""
        statement = (
            select(_RUNS)
            .where(
                _RUNS.c.cancel_requested_at.is_not(None),
                _RUNS.c.status.in_(_ACTIVE),
                or_(_RUNS.c.claimed_at.is_(None), _RUNS.c.dispatched_at.is_not(None)),
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
                    update(_RUNS).where(_RUNS.c.id.in_(run_ids)).values(cancel_requested_at=None)
                )

    async def unstarted(self, claimed_before: datetime, limit: int) -> builtins.list[RunRecord]:
        """Runs claimed before ``claimed_before`` whose start was never confirmed: their dispatcher died
        between the claim and the start. Starting them again is safe (the start is idempotent)."""
        statement = (
            select(_RUNS)
            .where(
                _RUNS.c.status == RunStatus.QUEUED.value,
                _RUNS.c.dispatched_at.is_(None),
                _RUNS.c.claimed_at < claimed_before,
            )
            .order_by(_RUNS.c.claimed_at)
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
                    update(_RUNS)
                    .where(_RUNS.c.status == _PENDING, _RUNS.c.expires_at <= now)
                    .values(_closed(RunStatus.EXPIRED, "expired: not started before its TTL ran out", now))
                    .returning(_RUNS.c.id)
                )
            )
            await enqueue(conn, AlertKind.RUN_EXPIRED, [(run_id, run_id) for run_id in expired])
        return len(expired)

    async def next_due(self) -> datetime | None:
        """When the earliest delayed run (or TTL) comes due: how long an idle dispatcher may sleep."""
        now = utcnow()
        async with self.db.engine.connect() as conn:
            times = [
                await conn.scalar(select(func.min(column)).where(_RUNS.c.status == _PENDING, column > now))
                for column in (_RUNS.c.not_before, _RUNS.c.expires_at)
            ]
        due = [as_utc(t) for t in times if t is not None]
        return min((t for t in due if t is not None), default=None)

    # -- reading ------------------------------------------------------------------------------------------

    async def reasons(self, runs: Sequence[RunRecord]) -> dict[str, str]:
        """Why each waiting run of ``runs`` has not started, worked out from the queue as it is now."""
        waiting = [run for run in runs if run.status in WAITING_STATUSES]
        if not waiting:
            return {}
        now = utcnow()
        async with self.db.engine.connect() as conn:
            ids = [run.id for run in waiting]
            starting = set(
                await conn.scalars(
                    select(_RUNS.c.id).where(_RUNS.c.id.in_(ids), _RUNS.c.claimed_at.is_not(None))
                )
            )
            slots = await self._slots_of(conn, ids, limits_only=True)
            used = await self._used(conn, sorted({s.scope for v in slots.values() for s in v}), now)
        reasons = {}
        for run in waiting:
            if run.id in starting:
                reasons[run.id] = "starting in Temporal"
                continue
            if run.status == RunStatus.DELAYED and run.not_before is not None:
                reasons[run.id] = f"delayed until {run.not_before.isoformat(timespec='seconds')}"
                continue
            full = [
                slot.describe(used[slot.scope])
                for slot in slots.get(run.id, ())
                if used[slot.scope] >= slot.limit
            ]
            reasons[run.id] = "; ".join(full) or "next in line: starting"
        return reasons

    async def depth(self, *, tenant: str | None = None) -> builtins.list[QueueDepth]:
        """Per queue: waiting (due), delayed and active runs, and how long the oldest due run has waited
        (of one tenant's runs, or everyone's)."""
        now = utcnow()
        rows: dict[str, QueueDepth] = {}
        due = and_(*_due(now))
        statement = (
            select(
                _RUNS.c.queue,
                func.count().filter(due),
                func.count().filter(_RUNS.c.status == _PENDING, _RUNS.c.not_before > now),
                func.count().filter(_RUNS.c.status.in_(_ACTIVE)),
                func.min(_RUNS.c.created_at).filter(due),
            )
            .where(_RUNS.c.status.in_([_PENDING, *_ACTIVE]), _RUNS.c.queue.is_not(None))
            .group_by(_RUNS.c.queue)
        )
        if tenant is not None:
            # SQLite would read all the tenant's runs by the listing index: the queue's index reads only
            # the waiting and running ones (measured: 60 ms → 6 ms with 20,000 runs, bench/dashboard.py).
            # (``tenant || ''`` keeps SQLite's planner off the listing index; PostgreSQL keeps statistics.)
            column = _RUNS.c.tenant.concat("") if self.db.is_sqlite else _RUNS.c.tenant
            statement = statement.where(column == tenant)
        async with self.db.engine.connect() as conn:
            for queue, pending, delayed, active, oldest in await conn.execute(statement):
                oldest = as_utc(oldest)
                wait = (now - oldest).total_seconds() if oldest is not None else 0.0
                rows[queue] = QueueDepth(queue, pending, delayed, active, max(0.0, wait))
        return sorted(rows.values(), key=lambda row: row.queue)


@dataclass(frozen=True)
class QueueDepth:
    queue: str
    pending: int
    delayed: int
    active: int
    oldest_wait: float  # seconds
