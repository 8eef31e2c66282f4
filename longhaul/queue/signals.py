"""Signals through the queue: what an event routed to a run (``SignalRoute``) waits in app storage until a
dispatcher has sent it.

Accepting the event writes the delivery in the same transaction as the event's runs
(:meth:`~longhaul.queue.RunQueue.accept`), so the sender's 202 means it is kept whether or not Temporal
answers now. A dispatcher sends the deliveries whose run's workflow exists, oldest first and a run's in
the order they came, each with its request id (the event's): a delivery sent again after a crash between
the send and its note is dropped by the server, so the workflow sees each once. A delivery whose run
closed first cannot be made: it is kept with the reason, and the run's log says so.

A run waiting for another to close (``trigger_and_wait``: a parent for its child, ``run_waiters``) is told
the same way: a dispatcher turns each closed child's waiters into deliveries of :data:`CHILD_DONE_SIGNAL`
(:meth:`Signalling.tell_waiters`), whatever closed the child (its workflow's final record, a cancel or
expiry before it started, the reconcile sweep), so no closing path has to remember it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, tuple_, update
from sqlalchemy.sql.dml import Insert

from longhaul.db import Database, utcnow, writing
from longhaul.models import CHILD_DONE_SIGNAL, TERMINAL_STATUSES, ChildRun
from longhaul.queue.tables import ACTIVE, RUNS, SIGNALS, WAITERS

_CLOSED = [status.value for status in TERMINAL_STATUSES]


@dataclass(frozen=True)
class SignalPlan:
    """A signal an event routes to a run, to be written with the event's acceptance."""

    run_id: str
    request_id: str
    signal: str
    payload: dict[str, Any]
    event: str
    event_id: str

    def row(self, now: datetime) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "request_id": self.request_id, "signal": self.signal,
            "payload": self.payload, "event": self.event, "event_id": self.event_id, "created_at": now,
            "sent_at": None, "error": None,
        }  # fmt: skip


@dataclass(frozen=True)
class DueSignal:
    """A delivery a dispatcher sends now (``closed``: its run closed first; it is given up)."""

    id: int
    run_id: str
    workflow_id: str
    request_id: str
    signal: str
    payload: dict[str, Any]
    closed: bool


class Signalling:
    """The run queue's signal deliveries (see :class:`longhaul.queue.RunQueue`)."""

    db: Database
    _insert_signal: Insert  # built once by the queue's accepting part (the same rows it writes)

    async def due_signals(self, limit: int) -> list[DueSignal]:
        """Undelivered signals whose run's workflow exists (started, not being started) or whose run
        closed, oldest first. A run still waiting in the queue keeps its signals until it starts."""
        started = (RUNS.c.status.in_(ACTIVE)) & or_(
            RUNS.c.claimed_at.is_(None), RUNS.c.dispatched_at.is_not(None)
        )
        statement = (
            select(SIGNALS, RUNS.c.workflow_id, RUNS.c.status)
            .join(RUNS, RUNS.c.id == SIGNALS.c.run_id)
            .where(SIGNALS.c.sent_at.is_(None), or_(started, RUNS.c.status.in_(_CLOSED)))
            .order_by(SIGNALS.c.id)
            .limit(limit)
        )
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(statement)).mappings().all()
        return [
            DueSignal(
                id=row["id"],
                run_id=row["run_id"],
                workflow_id=row["workflow_id"],
                request_id=row["request_id"],
                signal=row["signal"],
                payload=row["payload"],
                closed=row["status"] in _CLOSED,
            )
            for row in rows
        ]

    async def signals_sent(self, ids: Sequence[int], error: str | None = None) -> None:
        """Note deliveries made (or, with ``error``, given up: their run closed first)."""
        if ids:
            async with self.db.engine.begin() as conn:
                await conn.execute(
                    update(SIGNALS).where(SIGNALS.c.id.in_(ids)).values(sent_at=utcnow(), error=error)
                )

    async def tell_waiters(self, limit: int) -> int:
        """Write a :data:`CHILD_DONE_SIGNAL` delivery to each run waiting for a run that has closed (at most
        ``limit``), with the closed run's status, output and error, and note the waiters told; how many.
        Sent by :meth:`due_signals`' dispatcher like any other; the request id is the closed run's, so the
        same delivery written twice (two dispatchers at once) is kept once."""
        statement = (
            select(WAITERS.c.run_id, WAITERS.c.waiter_run_id, RUNS.c.workflow, RUNS.c.workflow_id,
                   RUNS.c.status, RUNS.c.output, RUNS.c.error, RUNS.c.event, RUNS.c.event_id)
            .join(RUNS, RUNS.c.id == WAITERS.c.run_id)
            .where(WAITERS.c.notified_at.is_(None), RUNS.c.status.in_(_CLOSED))
            .limit(limit)
        )  # fmt: skip
        async with self.db.engine.connect() as conn:  # most cycles find none: no write lock for that
            rows = (await conn.execute(statement)).mappings().all()
        if not rows:
            return 0
        async with writing(self.db) as conn:
            now = utcnow()
            deliveries = [
                {
                    "run_id": row["waiter_run_id"], "request_id": f"child-done:{row['run_id']}",
                    "signal": CHILD_DONE_SIGNAL, "event": row["event"], "event_id": row["event_id"],
                    "payload": ChildRun(
                        run_id=row["run_id"], workflow=row["workflow"], workflow_id=row["workflow_id"],
                        status=row["status"], output=row["output"], error=row["error"],
                    ).model_dump(mode="json"),
                    "created_at": now, "sent_at": None, "error": None,
                }
                for row in rows
            ]  # fmt: skip
            await conn.execute(self._insert_signal, deliveries)
            told = [(row["run_id"], row["waiter_run_id"]) for row in rows]
            await conn.execute(
                update(WAITERS)
                .where(tuple_(WAITERS.c.run_id, WAITERS.c.waiter_run_id).in_(told))
                .values(notified_at=now)
            )
        return len(rows)
