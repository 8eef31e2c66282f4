"""The run records' tables (``runs``, ``run_tags``, ``run_logs``, ``run_steps``): their one declaration,
and how a row becomes a :class:`~longhaul.models.RunRecord`. Written by :mod:`longhaul.storage` (what
workers report) and :mod:`longhaul.queue` (accepting and claiming), read by both."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from longhaul.db import Base, as_utc, utcnow
from longhaul.models import TERMINAL_STATUSES, LogLine, RunRecord, RunStatus, StepProgress

QUEUE_CHANNEL = "longhaul_queue"  # PostgreSQL NOTIFY channel: new work or a freed slot for the dispatchers


async def notify_queue(conn: AsyncConnection) -> None:
    """Wake the dispatchers listening on PostgreSQL when this transaction commits (SQLite's poll)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(select(func.pg_notify(QUEUE_CHANNEL, "")))


class RunRow(Base):
    __tablename__ = "runs"
    __table_args__ = (
        # One run per event and workflow, or one per generation where the sender's id expires
        # (``idempotency_key_ttl``): a duplicate after that makes the next generation.
        UniqueConstraint("tenant", "event", "event_id", "workflow", "generation", name="uq_runs_event"),
        Index("ix_runs_listing", "tenant", "created_at", "id"),
        Index("ix_runs_key", "tenant", "workflow", "business_key"),
        # The dashboard's overview counts a day of runs from the index alone (longhaul/api/ui/overview.py).
        Index("ix_runs_overview", "tenant", "created_at", "status", "workflow", "started_at", "finished_at"),
        # The run queue's order: what the dispatcher reads first (longhaul.queue).
        Index("ix_runs_queue", "status", "priority", "created_at"),
        # Whether any waiting run has a fair share (the dispatcher then claims in turns).
        Index("ix_runs_fair", "status", "fair_key"),
        # What changed lately, for every open stream of the process at once (longhaul/api/changes.py).
        Index("ix_runs_updated", "updated_at", "id"),
        Index("uq_runs_gate", "gate", unique=True),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    workflow: Mapped[str] = mapped_column(String(100))
    workflow_id: Mapped[str] = mapped_column(String(400), unique=True)
    event: Mapped[str] = mapped_column(String(100))
    event_id: Mapped[str] = mapped_column(String(200))
    business_key: Mapped[str | None] = mapped_column(String(200))
    generation: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    idempotency_key_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    replay_of: Mapped[str | None] = mapped_column(String(40), index=True)
    # A child run (trigger_and_wait from a workflow, longhaul/workflows/children.py): the run whose
    # workflow started it, and the run at the top of that chain.
    parent_run_id: Mapped[str | None] = mapped_column(String(40), index=True)
    root_run_id: Mapped[str | None] = mapped_column(String(40))
    version: Mapped[str | None] = mapped_column(String(400))  # the Worker Deployment version it is pinned to
    status: Mapped[str] = mapped_column(String(16), index=True)
    # The run queue (longhaul.queue): which queue, in what order, from when, until when.
    queue: Mapped[str | None] = mapped_column(String(100))
    priority: Mapped[int] = mapped_column(Integer, default=3, server_default="3")
    fair_key: Mapped[str | None] = mapped_column(String(300))  # fair share: the value it takes turns by
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set while events may still join the run (debounce, batch): one open run per gate.
    gate: Mapped[str | None] = mapped_column(String(300))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # taken by a dispatcher
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # started in Temporal
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_reason: Mapped[str | None] = mapped_column(String(600))  # who asked, and why (see cancellation())
    # Paused by a person (longhaul/server/pausing.py): a waiting run is not claimed, a started one is paused
    # in Temporal; who paused it and why, as the record shows it.
    paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pause_reason: Mapped[str | None] = mapped_column(String(600))
    traceparent: Mapped[str | None] = mapped_column(String(100))  # the accepting request's trace
    progress: Mapped[int] = mapped_column(Integer, default=0)
    stage: Mapped[str | None] = mapped_column(String(200))
    # The run's metadata (RunRecord.metadata); ``metadata`` itself is taken by SQLAlchemy's declarative base.
    run_metadata: Mapped[Any] = mapped_column(JSON, nullable=True)
    input: Mapped[Any] = mapped_column(JSON)
    output: Mapped[Any] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RunTagRow(Base):
    __tablename__ = "run_tags"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)


class RunLogRow(Base):
    __tablename__ = "run_logs"
    __table_args__ = (UniqueConstraint("run_id", "op_id", name="uq_run_logs_op"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    level: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    op_id: Mapped[str] = mapped_column(String(200))


class RunStepRow(Base):
    """Progress of the parallel parts of a run (one row per part), folded into the run's percent."""

    __tablename__ = "run_steps"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    group: Mapped[str] = mapped_column(String(50), primary_key=True)
    step: Mapped[str] = mapped_column(String(100), primary_key=True)
    percent: Mapped[int] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(String(200))


RUNS = cast(Table, RunRow.__table__)
LOGS = cast(Table, RunLogRow.__table__)
TAGS = cast(Table, RunTagRow.__table__)
OPEN = RUNS.c.status.not_in([s.value for s in TERMINAL_STATUSES])


_TIMES = (
    "created_at",
    "started_at",
    "finished_at",
    "updated_at",
    "not_before",
    "expires_at",
    "idempotency_key_expires_at",
    "paused_at",
)


def record_of(
    values: dict[str, Any],
    tags: list[str],
    logs: list[LogLine] | None = None,
    steps: list[StepProgress] | None = None,
) -> RunRecord:
    """The run record of a row's column values: times in UTC, and a waiting run whose time has not come
    shown as ``delayed``."""
    values = {**values, **{key: as_utc(values.get(key)) for key in _TIMES}}
    values["metadata"] = values.pop("run_metadata", None) or {}
    if values["status"] == RunStatus.PENDING and values["not_before"] and values["not_before"] > utcnow():
        values["status"] = RunStatus.DELAYED
    if values["status"] == RunStatus.QUEUED and values.get("claimed_at") and not values.get("dispatched_at"):
        values["status"] = RunStatus.PENDING  # a dispatcher is starting it: not in Temporal yet
    if RunStatus(values["status"]).terminal:  # a closed run is not held any more (cancelled while paused)
        values["paused_at"] = values["pause_reason"] = None
    return RunRecord.model_validate({**values, "tags": tags, "logs": logs or [], "steps": steps or []})


def record_of_row(
    row: RunRow, tags: list[str], logs: list[LogLine] | None = None, steps: list[StepProgress] | None = None
) -> RunRecord:
    return record_of({c.key: getattr(row, c.key) for c in RUNS.columns}, tags, logs, steps)


async def tags_of(executor: AsyncConnection | AsyncSession, run_ids: list[str]) -> dict[str, list[str]]:
    """The tags of each of ``run_ids`` that has any, sorted (one query; none for no ids)."""
    tags: dict[str, list[str]] = {}
    if run_ids:
        statement = select(TAGS.c.run_id, TAGS.c.tag).where(TAGS.c.run_id.in_(run_ids)).order_by(TAGS.c.tag)
        for run_id, tag in await executor.execute(statement):
            tags.setdefault(run_id, []).append(tag)
    return tags
