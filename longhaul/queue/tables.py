"""The run queue's tables besides ``runs`` (slots and leases), and the queries its parts share."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from longhaul.db import Base
from longhaul.flow import Slot, SlotKind
from longhaul.models import ACTIVE_STATUSES, RunStatus
from longhaul.records import RunRow, RunTagRow

ACTIVE = [s.value for s in ACTIVE_STATUSES]
PENDING = RunStatus.PENDING.value


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


class FairShareRow(Base):
    """A fair-share flow of a queue: the runs of one key value (``key``) of ``queue``, which take turns
    with the queue's other values (:mod:`longhaul.queue.claiming`). ``weight``: how many turns it takes
    to another's one (set at run time); ``turn``: where its next run stands in the dispatchers' order
    (advanced by ``1 / weight`` per start). Two rows are the dispatchers' own: the runs without fair
    share, which take turns as one flow (``("", "")``), and the clock, the turn of the latest start, from
    which a flow back from idle starts (``("", "*")``)."""

    __tablename__ = "fair_shares"

    queue: Mapped[str] = mapped_column(String(100), primary_key=True)
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    weight: Mapped[float] = mapped_column(Float, default=1.0, server_default="1")
    turn: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")


class QueuePauseRow(Base):
    """A queue paused (``key`` ""), or one tenant's runs of it (``key``: the tenant): its pending runs stay
    pending, saying why, until it is resumed. Set at run time (longhaul/queue/controls.py)."""

    __tablename__ = "queue_pauses"

    queue: Mapped[str] = mapped_column(String(100), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str | None] = mapped_column(String(500))
    paused_by: Mapped[str | None] = mapped_column(String(100))
    paused_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LimitOverrideRow(Base):
    """A concurrency or rate limit set at run time for one scope (``video-processing/tenant=acme``,
    ``rate:orders/tenant=acme``: as a waiting run's reason names it), in place of the declared one."""

    __tablename__ = "queue_limits"

    scope: Mapped[str] = mapped_column(String(300), primary_key=True)
    limit: Mapped[int] = mapped_column(Integer)
    set_by: Mapped[str | None] = mapped_column(String(100))
    set_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SignalDeliveryRow(Base):
    """A signal an event routed to a run (``SignalRoute``), written in the transaction that accepted the
    event and sent by a dispatcher once the run's workflow exists (:mod:`longhaul.queue.signals`). One per
    run and request id (the event's): the same event sent again is the same delivery."""

    __tablename__ = "signal_deliveries"
    __table_args__ = (
        UniqueConstraint("run_id", "request_id", name="uq_signal_deliveries_request"),
        Index("ix_signal_deliveries_due", "sent_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)  # the order they go in
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    request_id: Mapped[str] = mapped_column(String(400))  # Temporal drops a repeat of it, too
    signal: Mapped[str] = mapped_column(String(100))
    payload: Mapped[Any] = mapped_column(JSON)
    event: Mapped[str] = mapped_column(String(100))
    event_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # delivered, or given up
    error: Mapped[str | None] = mapped_column(String(600))  # why it could not be delivered


class RunWaiterRow(Base):
    """A run whose workflow waits for another run to close (``trigger_and_wait``: the parent for its child).
    When the child closes, however it closes (completed, failed, cancelled or expired before it started),
    a dispatcher turns the row into a signal delivery to the waiting run (:mod:`longhaul.queue.signals`)
    and notes it notified. A run joined by several waiters (the same event id, a debounce) tells each."""

    __tablename__ = "run_waiters"
    __table_args__ = (Index("ix_run_waiters_open", "notified_at"),)

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    waiter_run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LeaseRow(Base):
    """Who holds a role that only one process may hold at a time on SQLite (the dispatcher)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


RUNS = cast(Table, RunRow.__table__)
TAGS = cast(Table, RunTagRow.__table__)
SLOTS = cast(Table, RunSlotRow.__table__)
LEASES = cast(Table, LeaseRow.__table__)
FAIR_SHARES = cast(Table, FairShareRow.__table__)
PAUSES = cast(Table, QueuePauseRow.__table__)
LIMITS = cast(Table, LimitOverrideRow.__table__)
SIGNALS = cast(Table, SignalDeliveryRow.__table__)
WAITERS = cast(Table, RunWaiterRow.__table__)


def closed(status: RunStatus, error: str, now: datetime) -> dict[str, Any]:
    """The column values of a waiting run closed without ever starting (cancelled, expired)."""
    return {
        "status": status.value,
        "stage": status.value,
        "error": error,
        "gate": None,
        "finished_at": now,
        "updated_at": now,
    }


def paused() -> Any:
    """Whether a run is held: paused itself, or its queue or its tenant's key of it is (a correlated
    EXISTS on ``runs``)."""
    queue_paused = exists().where(
        PAUSES.c.queue == RUNS.c.queue, or_(PAUSES.c.key == "", PAUSES.c.key == RUNS.c.tenant)
    )
    return or_(RUNS.c.paused_at.is_not(None), queue_paused)


async def pauses_of(conn: AsyncConnection, queues: set[str]) -> dict[tuple[str, str], str | None]:
    """The pauses of ``queues`` with their reasons, by (queue, "") for a whole queue and (queue, tenant)
    for one tenant's runs of it."""
    statement = select(PAUSES.c.queue, PAUSES.c.key, PAUSES.c.reason).where(
        PAUSES.c.queue.in_(sorted(queues))
    )
    return {(queue, key): reason for queue, key, reason in await conn.execute(statement)}


def due_now(now: datetime) -> tuple[Any, ...]:
    return (
        RUNS.c.status == PENDING,
        or_(RUNS.c.not_before.is_(None), RUNS.c.not_before <= now),
        or_(RUNS.c.expires_at.is_(None), RUNS.c.expires_at > now),
    )


async def slots_of(
    conn: AsyncConnection, run_ids: list[str], *, limits_only: bool = False
) -> dict[str, list[Slot]]:
    """Each run's slots, with the limit set at run time where there is one (``limits_only``: only those
    a run may wait for)."""
    slots: dict[str, list[Slot]] = {}
    limit = func.coalesce(LIMITS.c.limit, SLOTS.c.limit).label("effective")
    statement = (
        select(SLOTS, limit)
        .outerjoin(LIMITS, LIMITS.c.scope == SLOTS.c.scope)
        .where(SLOTS.c.run_id.in_(run_ids))
    )
    if limits_only:
        statement = statement.where(SLOTS.c.kind.in_([SlotKind.CONCURRENCY.value, SlotKind.RATE.value]))
    for row in (await conn.execute(statement)).mappings():
        period = row["period_ms"] / 1000 if row["period_ms"] is not None else None
        slot = Slot(row["scope"], SlotKind(row["kind"]), row["effective"], period)
        slots.setdefault(row["run_id"], []).append(slot)
    return slots


async def slot_use(conn: AsyncConnection, scopes: list[str], now: datetime) -> Counter[str]:
    """Per scope, how much of its limit is taken now: active runs, or starts within the period."""
    used: Counter[str] = Counter()
    if not scopes:
        return used
    active = (
        select(SLOTS.c.scope, func.count())
        .join(RUNS, RUNS.c.id == SLOTS.c.run_id)
        .where(
            SLOTS.c.scope.in_(scopes),
            SLOTS.c.kind == SlotKind.CONCURRENCY.value,
            RUNS.c.status.in_(ACTIVE),
        )
        .group_by(SLOTS.c.scope)
    )
    recent = (
        select(SLOTS.c.scope, func.count())
        .where(SLOTS.c.scope.in_(scopes), SLOTS.c.kind == SlotKind.RATE.value, SLOTS.c.free_at > now)
        .group_by(SLOTS.c.scope)
    )
    for statement in (active, recent):
        for scope, count in await conn.execute(statement):
            used[scope] += count
    return used
