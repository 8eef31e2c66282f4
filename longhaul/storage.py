"""App storage: durable run records in SQLite (default) or PostgreSQL, through SQLAlchemy 2 async.

Run records are the product's truth: the API writes one (``queued``) before it starts a workflow, the
worker moves it through its statuses, and status pages read it. Uniqueness of a run per
(tenant, event, event id, workflow) is enforced here by constraints, not by hoping callers behave.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import builtins
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
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
    and_,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy import (
    cast as sql_cast,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.dml import Insert, Update

from longhaul.alerts import enqueue
from longhaul.db import Base, Database, as_utc, insert_ignoring_duplicates, insert_new, utcnow
from longhaul.models import (
    TERMINAL_STATUSES,
    AlertKind,
    LogLine,
    RunPage,
    RunRecord,
    RunStatus,
    RunUpdate,
    StepProgress,
)
from longhaul.waitpoints import WaitpointStore, cancel_waiting

MAX_LOG_LINES = 500  # a run's detail shows its newest lines; the table keeps them all
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
        # The dashboard's overview counts a day of runs from the index alone (longhaul/server/overview.py).
        Index("ix_runs_overview", "tenant", "created_at", "status", "workflow", "started_at", "finished_at"),
        # The run queue's order: what the dispatcher reads first (longhaul.queue).
        Index("ix_runs_queue", "status", "priority", "created_at"),
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
    status: Mapped[str] = mapped_column(String(16), index=True)
    # The run queue (longhaul.queue): which queue, in what order, from when, until when.
    queue: Mapped[str | None] = mapped_column(String(100))
    priority: Mapped[int] = mapped_column(Integer, default=3, server_default="3")
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set while events may still join the run (debounce, batch): one open run per gate.
    gate: Mapped[str | None] = mapped_column(String(300))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # taken by a dispatcher
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # started in Temporal
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_reason: Mapped[str | None] = mapped_column(String(600))  # who asked, and why (see cancellation())
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


_RUNS = cast(Table, RunRow.__table__)
_LOGS = cast(Table, RunLogRow.__table__)
_TAGS = cast(Table, RunTagRow.__table__)
_OPEN = _RUNS.c.status.not_in([s.value for s in TERMINAL_STATUSES])


_TIMES = (
    "created_at",
    "started_at",
    "finished_at",
    "updated_at",
    "not_before",
    "expires_at",
    "idempotency_key_expires_at",
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
    return RunRecord.model_validate({**values, "tags": tags, "logs": logs or [], "steps": steps or []})


def _record(
    row: RunRow, tags: list[str], logs: list[LogLine] | None = None, steps: list[StepProgress] | None = None
) -> RunRecord:
    return record_of({c.key: getattr(row, c.key) for c in _RUNS.columns}, tags, logs, steps)


@dataclass(frozen=True)
class RunFilter:
    """What ``GET /api/runs`` filters on; ``None`` means any."""

    tenant: str
    status: RunStatus | None = None
    workflow: str | None = None
    event: str | None = None
    tag: str | None = None
    created_after: datetime | None = None  # created at or after
    created_before: datetime | None = None  # created strictly before
    search: str | None = None  # part of the business key (any case), or a run or event id
    ids: tuple[str, ...] | None = None  # these runs only (what a page shows, followed live)
    excluded: tuple[str, ...] = ()  # never these (a bulk action's own run)
    children_of: str | None = None  # the runs this run started: its replays, and runs of events it emitted


def _status_is(status: RunStatus) -> tuple[Any, ...]:
    """Conditions for runs shown with ``status`` (delayed and pending are one stored status, by time)."""
    if status == RunStatus.DELAYED:
        return (RunRow.status == RunStatus.PENDING, RunRow.not_before > utcnow())
    if status == RunStatus.PENDING:
        return (
            RunRow.status == RunStatus.PENDING,
            or_(RunRow.not_before.is_(None), RunRow.not_before <= utcnow()),
        )
    return (RunRow.status == status,)


def _by_id(where: RunFilter) -> list[Any]:
    """The conditions of ``where``'s ids: these only, and never those."""
    conditions: list[Any] = [RunRow.id.in_(where.ids)] if where.ids is not None else []
    if where.excluded:
        conditions.append(RunRow.id.not_in(where.excluded))
    return conditions


def _matching(where: RunFilter) -> list[Any]:
    """The conditions of ``where``."""
    conditions: list[Any] = [RunRow.tenant == where.tenant]
    if where.status is not None:
        conditions.extend(_status_is(where.status))
    if where.workflow is not None:
        conditions.append(RunRow.workflow == where.workflow)
    if where.event is not None:
        conditions.append(RunRow.event == where.event)
    if where.tag is not None:
        conditions.append(RunRow.id.in_(select(RunTagRow.run_id).where(RunTagRow.tag == where.tag)))
    if where.created_after is not None:
        conditions.append(RunRow.created_at >= where.created_after)
    if where.created_before is not None:
        conditions.append(RunRow.created_at < where.created_before)
    if where.search:
        text = where.search.lower()
        conditions.append(
            or_(
                func.lower(RunRow.business_key).contains(text, autoescape=True),
                RunRow.id == where.search,
                RunRow.event_id == where.search,
            )
        )
    conditions += _by_id(where)
    if where.children_of is not None:
        # An emitted event's id is the emitting run's id and a suffix (longhaul/activities/events.py).
        emitted = RunRow.event_id.startswith(f"{where.children_of}.", autoescape=True)
        conditions.append(or_(RunRow.replay_of == where.children_of, emitted))
    return conditions


class InvalidCursorError(ValueError):
    """A pagination cursor that this API did not hand out."""


def _encode_cursor(row: RunRow) -> str:
    created = as_utc(row.created_at)
    assert created is not None
    return base64.urlsafe_b64encode(f"{created.isoformat()}|{row.id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created, run_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return datetime.fromisoformat(created), run_id
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise InvalidCursorError(f"invalid cursor {cursor!r}") from error


def _update_values(change: RunUpdate, now: datetime) -> dict[str, Any]:
    """The column values ``change`` sets (``None`` fields are left as they are)."""
    values: dict[str, Any] = {"updated_at": now}
    if change.status is not None:
        values["status"] = change.status.value
        if change.status == RunStatus.RUNNING:
            values["started_at"] = now  # unless set already: see _update_statement
        if change.status.terminal:
            values["finished_at"] = now
            values["gate"] = None  # no event joins a closed run
            if change.status == RunStatus.COMPLETED:
                values["progress"] = 100
    for field in ("progress", "stage", "error", "output"):
        value = getattr(change, field)
        if value is not None:
            values[field] = value
    if change.metadata is not None:
        values["run_metadata"] = change.metadata
    if change.attempt is not None:
        values["attempts"] = change.attempt
    return values


@functools.cache
def _update_statement(columns: tuple[str, ...]) -> Update:
    """The UPDATE of an open run that sets ``columns``, built once per set of columns and executed with
    parameters (``run`` and ``new_<column>``): building statements per change cost more CPU than running
    them. ``started_at`` keeps the first start."""
    values: dict[str, Any] = {
        column: bindparam(f"new_{column}", type_=_RUNS.c[column].type) for column in columns
    }
    if "started_at" in values:
        values["started_at"] = func.coalesce(_RUNS.c.started_at, values["started_at"])
    return update(_RUNS).where(_RUNS.c.id == bindparam("run"), _OPEN).values(values)


async def _apply_in(
    conn: AsyncConnection, changes: Sequence[RunUpdate], insert_log: Insert
) -> builtins.list[bool]:
    """Apply ``changes`` in order within ``conn``'s transaction; per change, whether it changed."""
    results = []
    closed: builtins.list[str] = []
    failed: builtins.list[tuple[str, str]] = []
    for change in changes:
        now = utcnow()
        values = _update_values(change, now)
        statement = _update_statement(tuple(values))
        parameters = {"run": change.run_id, **{f"new_{column}": v for column, v in values.items()}}
        changed = bool(getattr(await conn.execute(statement, parameters), "rowcount", 0))
        if changed and change.log:
            line = {
                "run_id": change.run_id,
                "at": now,
                "level": change.log_level,
                "message": change.log,
                "op_id": change.op_id or f"update-{now.timestamp()}",
            }
            # A retry's line is there already: the unique (run, op id) key keeps one.
            await conn.execute(insert_log, line)
        results.append(changed)
        if changed and change.status is not None and change.status.terminal:
            closed.append(change.run_id)
            if change.status in (RunStatus.FAILED, RunStatus.TIMED_OUT):
                failed.append((change.run_id, change.run_id))
    await enqueue(conn, AlertKind.RUN_FAILED, failed)  # alerts, in the transaction of the failure
    if closed:
        await cancel_waiting(conn, closed)  # a closed run waits for no token
        await notify_queue(conn)  # a closed run frees its slots: wake the dispatchers
    return results


async def tags_of(executor: AsyncConnection | AsyncSession, run_ids: list[str]) -> dict[str, list[str]]:
    """The tags of each of ``run_ids`` that has any, sorted (one query; none for no ids)."""
    tags: dict[str, list[str]] = {}
    if run_ids:
        statement = (
            select(_TAGS.c.run_id, _TAGS.c.tag).where(_TAGS.c.run_id.in_(run_ids)).order_by(_TAGS.c.tag)
        )
        for run_id, tag in await executor.execute(statement):
            tags.setdefault(run_id, []).append(tag)
    return tags


class RunStore:
    """Reads and writes run records. One per process; safe to share across tasks of one event loop."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._sessions = db.sessions
        self._insert_run = insert_ignoring_duplicates(_RUNS, is_sqlite=db.is_sqlite)
        self._insert_log = insert_ignoring_duplicates(_LOGS, is_sqlite=db.is_sqlite)
        self.waitpoints = WaitpointStore(db)
        self._queued: builtins.list[tuple[Sequence[RunUpdate], asyncio.Future[builtins.list[bool]]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def create_queued(
        self,
        *,
        run_id: str,
        tenant: str,
        workflow: str,
        workflow_id: str,
        event: str,
        event_id: str,
        input: Any,
        business_key: str | None = None,
        tags: list[str] | None = None,
        replay_of: str | None = None,
    ) -> tuple[RunRecord, bool]:
        """Insert a ``queued`` record; if the same run exists already, return it. Second item: inserted?"""
        now = utcnow()
        values: dict[str, Any] = dict.fromkeys(_RUNS.columns.keys())
        values.update(
            priority=3,
            generation=1,
            id=run_id,
            tenant=tenant,
            workflow=workflow,
            workflow_id=workflow_id,
            event=event,
            event_id=event_id,
            business_key=business_key,
            replay_of=replay_of,
            status=RunStatus.QUEUED.value,
            progress=0,
            input=input,
            attempts=0,
            created_at=now,
            updated_at=now,
        )
        unique_tags = sorted(set(tags or []))
        # Core on a connection, a statement built once, no savepoint: this is on every event's path.
        async with self.db.engine.begin() as conn:
            result = await conn.execute(self._insert_run, values)
            inserted = bool(getattr(result, "rowcount", 0))
            if inserted and unique_tags:
                await conn.execute(insert(_TAGS), [{"run_id": run_id, "tag": t} for t in unique_tags])
        if inserted:
            return record_of(values, unique_tags), True
        existing = await self.get(run_id, logs=False)
        if existing is None:  # a different run holds a unique key: a caller bug, not a duplicate
            raise IntegrityError("insert run", {"id": run_id}, Exception("unique key held by another run"))
        return existing, False

    async def get(self, run_id: str, *, tenant: str | None = None, logs: bool = True) -> RunRecord | None:
        """One run with its tags (and, with ``logs``, its newest log lines, parallel steps and waitpoint
        tokens); ``tenant`` scopes the lookup when given."""
        async with self._sessions() as session:
            row = await session.get(RunRow, run_id)
            if row is None or (tenant is not None and row.tenant != tenant):
                return None
            tags = list(
                await session.scalars(
                    select(RunTagRow.tag).where(RunTagRow.run_id == run_id).order_by(RunTagRow.tag)
                )
            )
            lines: list[LogLine] = []
            steps: list[StepProgress] = []
            if logs:
                newest = (
                    select(RunLogRow)
                    .where(RunLogRow.run_id == run_id)
                    .order_by(RunLogRow.id.desc())
                    .limit(MAX_LOG_LINES)
                )
                lines = [
                    LogLine(at=as_utc(r.at) or r.at, level=r.level, message=r.message)
                    for r in reversed(list(await session.scalars(newest)))
                ]
                step_rows = await session.scalars(
                    select(RunStepRow)
                    .where(RunStepRow.run_id == run_id)
                    .order_by(RunStepRow.group, RunStepRow.step)
                )
                steps = [
                    StepProgress(group=r.group, step=r.step, percent=r.percent, detail=r.detail)
                    for r in step_rows
                ]
            record = _record(row, tags, lines, steps)
        if logs:
            record.waitpoints = await self.waitpoints.of_run(run_id)
        return record

    async def changes_since(self, since: datetime, limit: int) -> builtins.list[tuple[str, datetime]]:
        """(id, updated_at) of the runs changed at or after ``since``, oldest change first (from the
        index alone: what a poller reads to learn what it has not seen)."""
        statement = (
            select(RunRow.id, RunRow.updated_at)
            .where(RunRow.updated_at >= since)
            .order_by(RunRow.updated_at)
            .limit(limit)
        )
        async with self._sessions() as session:
            return [(run_id, as_utc(at) or at) for run_id, at in await session.execute(statement)]

    async def records(self, run_ids: builtins.list[str]) -> builtins.list[RunRecord]:
        """The records (with tags, without logs) of ``run_ids`` that exist, in no particular order."""
        if not run_ids:
            return []
        async with self._sessions() as session:
            rows = list(await session.scalars(select(RunRow).where(RunRow.id.in_(run_ids))))
            tags = await tags_of(session, [row.id for row in rows])
        return [_record(row, tags.get(row.id, [])) for row in rows]

    async def changed_last_with_tag(self, tenant: str, tag: str, limit: int) -> builtins.list[RunRecord]:
        """The ``limit`` runs of ``tenant`` carrying ``tag`` that changed last, oldest change first: what a
        stream of the tag sends first."""
        statement = (
            select(RunRow)
            .where(
                RunRow.tenant == tenant, RunRow.id.in_(select(RunTagRow.run_id).where(RunTagRow.tag == tag))
            )
            .order_by(RunRow.updated_at.desc())
            .limit(limit)
        )
        async with self._sessions() as session:
            rows = list(await session.scalars(statement))
            tags = await tags_of(session, [row.id for row in rows])
        return [_record(row, tags.get(row.id, [])) for row in reversed(rows)]

    async def count_matching(self, where: RunFilter) -> int:
        """How many runs ``where`` matches."""
        async with self._sessions() as session:
            return int(
                await session.scalar(select(func.count()).select_from(RunRow).where(*_matching(where))) or 0
            )

    async def list(self, where: RunFilter, *, limit: int = 50, cursor: str | None = None) -> RunPage:
        """Runs newest first, filtered, one page at a time (keyset pagination: stable under inserts)."""
        statement = select(RunRow).where(*_matching(where))
        if cursor is not None:
            created, run_id = _decode_cursor(cursor)
            statement = statement.where(
                or_(RunRow.created_at < created, and_(RunRow.created_at == created, RunRow.id < run_id))
            )
        statement = statement.order_by(RunRow.created_at.desc(), RunRow.id.desc()).limit(limit + 1)
        async with self._sessions() as session:
            rows = list(await session.scalars(statement))
            page, more = rows[:limit], len(rows) > limit
            tags = await tags_of(session, [row.id for row in page])
        return RunPage(
            runs=[_record(row, tags.get(row.id, [])) for row in page],
            next_cursor=_encode_cursor(page[-1]) if more else None,
        )

    async def created_per_bucket(
        self, tenant: str, start: datetime, bucket: timedelta
    ) -> builtins.list[tuple[int, RunStatus, int]]:
        """How many of ``tenant``'s runs created since ``start`` have each status, per ``bucket`` of time
        (0: the first after ``start``): counted in the database from the overview index, so the overview
        reads a few rows back however many runs there are."""
        offset = self._seconds(RunRow.created_at, start) / bucket.total_seconds()
        # Whole buckets: SQLite's CAST truncates (offsets are ≥ 0); PostgreSQL's rounds, so floor first.
        index = sql_cast(offset if self.db.is_sqlite else func.floor(offset), Integer)
        statement = (
            select(index, RunRow.status, func.count())
            .where(RunRow.tenant == tenant, RunRow.created_at >= start)
            .group_by(index, RunRow.status)
        )
        async with self.db.engine.connect() as conn:
            return [(int(i), RunStatus(status), n) for i, status, n in await conn.execute(statement)]

    async def per_workflow(self, tenant: str, since: datetime) -> builtins.list[tuple[str, RunStatus, int]]:
        """How many of ``tenant``'s runs created since ``since`` each workflow has in each status."""
        statement = (
            select(RunRow.workflow, RunRow.status, func.count())
            .where(RunRow.tenant == tenant, RunRow.created_at >= since)
            .group_by(RunRow.workflow, RunRow.status)
        )
        async with self.db.engine.connect() as conn:
            return [(workflow, RunStatus(status), n) for workflow, status, n in await conn.execute(statement)]

    async def durations(self, tenant: str, since: datetime) -> builtins.list[tuple[str, float]]:
        """Seconds from start to finish of each of ``tenant``'s runs created since ``since`` that
        completed, with its workflow (numbers from the database: no timestamps parsed here)."""
        took = self._seconds(RunRow.finished_at, RunRow.started_at)
        statement = select(RunRow.workflow, took).where(
            RunRow.tenant == tenant,
            RunRow.created_at >= since,
            RunRow.status == RunStatus.COMPLETED,
            RunRow.started_at.is_not(None),
            RunRow.finished_at.is_not(None),
        )
        async with self.db.engine.connect() as conn:
            return [(workflow, float(seconds)) for workflow, seconds in await conn.execute(statement)]

    def _seconds(self, later: Any, earlier: Any) -> Any:
        """SQL for the seconds from ``earlier`` to ``later`` (columns or a time)."""
        if isinstance(earlier, datetime):
            earlier = literal(earlier, DateTime(timezone=True))
        if self.db.is_sqlite:
            return (func.julianday(later) - func.julianday(earlier)) * 86_400.0
        return func.extract("epoch", later - earlier)

    async def find_active(self, *, tenant: str, workflow: str, business_key: str) -> RunRecord | None:
        """The newest run of ``workflow`` for ``business_key`` that has not finished (signal routing)."""
        statement = (
            select(RunRow.id)
            .where(
                RunRow.tenant == tenant,
                RunRow.workflow == workflow,
                RunRow.business_key == business_key,
                RunRow.status.not_in([s.value for s in TERMINAL_STATUSES]),
            )
            .order_by(RunRow.created_at.desc())
            .limit(1)
        )
        async with self._sessions() as session:
            run_id = await session.scalar(statement)
        return await self.get(run_id, logs=False) if run_id else None

    async def stuck(self, before: datetime, limit: int) -> builtins.list[RunRecord]:
        """Runs still queued or running whose record has not changed since ``before``. A run a dispatcher
        has taken but not yet started is the dispatcher's to finish (longhaul.queue), not stuck."""
        being_started = and_(RunRow.claimed_at.is_not(None), RunRow.dispatched_at.is_(None))
        statement = (
            select(RunRow)
            .where(
                RunRow.status.in_([RunStatus.QUEUED, RunStatus.RUNNING]),
                RunRow.updated_at < before,
                ~being_started,
            )
            .order_by(RunRow.updated_at)
            .limit(limit)
        )
        async with self._sessions() as session:
            return [_record(row, []) for row in await session.scalars(statement)]

    async def count_replays(self, run_id: str) -> int:
        async with self._sessions() as session:
            return int(await session.scalar(select(func.count()).where(RunRow.replay_of == run_id)) or 0)

    async def reopen(self, change: RunUpdate, *, stage: str) -> bool:
        """The one way back from a final status: a failed run that is resumed (longhaul/server/resume.py) is
        ``running`` again, its error and finish cleared; ``change``'s log line is added. False if the run
        is not failed (resumed already by another call)."""
        now = utcnow()
        reopened = (
            update(_RUNS)
            .where(_RUNS.c.id == change.run_id, _RUNS.c.status == RunStatus.FAILED.value)
            .values(status=RunStatus.RUNNING.value, error=None, output=None, finished_at=None, stage=stage,
                    updated_at=now)
        )  # fmt: skip
        async with self.db.engine.begin() as conn:
            if not getattr(await conn.execute(reopened), "rowcount", 0):
                return False
            if change.log:
                line = {"run_id": change.run_id, "at": now, "level": change.log_level, "message": change.log,
                        "op_id": f"reopen-{now.timestamp()}"}  # fmt: skip
                await conn.execute(self._insert_log, line)
        return True

    async def apply(self, change: RunUpdate, *, op_id: str) -> bool:
        """Apply a worker-side update; see :meth:`apply_all`. Returns whether the record changed."""
        [changed] = await self.apply_all([change.model_copy(update={"op_id": op_id})])
        return changed

    async def apply_all(self, changes: Sequence[RunUpdate]) -> builtins.list[bool]:
        """Apply worker-side updates in order, in one transaction. A run that reached a final status is
        never changed again.

        Each change's ``op_id`` names its operation (workflow run + sequence number): applied again (a
        retry, a redelivery), it changes nothing new and its log line is stored once (unique per run and
        op id). A change with an ``origin`` creates the record if it is missing (schedule-started runs).
        Returns, per change, whether the record changed.
        """
        changed = await self._apply_all(changes)
        missing = [c for c, done in zip(changes, changed, strict=True) if not done and c.origin is not None]
        if missing and await self.get(missing[0].run_id, logs=False) is None:
            origin = missing[0].origin
            assert origin is not None
            await self.create_queued(
                run_id=missing[0].run_id,
                tenant=origin.tenant,
                workflow=origin.workflow,
                workflow_id=origin.workflow_id,
                event=origin.event,
                event_id=origin.event_id,
                input=None,
            )
            changed = await self._apply_all(changes)
        return changed

    async def _apply_all(self, changes: Sequence[RunUpdate]) -> builtins.list[bool]:
        """Group commit: updates sent at about the same time (many runs in flight) are applied by one
        writer in one transaction, which is far cheaper than a transaction each. Each caller still
        returns only once its own updates are committed."""
        done: asyncio.Future[builtins.list[bool]] = asyncio.get_running_loop().create_future()
        self._queued.append((changes, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued())
        return await done

    async def _write_queued(self) -> None:
        while self._queued:
            batch, self._queued = self._queued, []
            try:
                async with self.db.engine.begin() as conn:
                    results = [await _apply_in(conn, changes, self._insert_log) for changes, _ in batch]
            except Exception as error:  # the whole batch failed (e.g. storage down): each caller retries
                for _, done in batch:
                    if not done.done():
                        done.set_exception(error)
            else:
                for (_, done), result in zip(batch, results, strict=True):
                    if not done.done():
                        done.set_result(result)

    async def report_step(self, run_id: str, progress: StepProgress, *, span: tuple[int, int]) -> None:
        """Record one parallel part's progress and fold its group into the run's percent and stage.

        The group's mean percent maps onto ``span`` of the run's progress (e.g. transcodes cover 10 to
        70 %); the stage lists each part ("transcoding: 1080p 40%, 720p 75%"). Progress only moves forward,
        and a finished run is left alone.
        """
        values = {"percent": progress.percent, "detail": progress.detail}
        key = (
            RunStepRow.run_id == run_id,
            RunStepRow.group == progress.group,
            RunStepRow.step == progress.step,
        )
        async with self._sessions.begin() as session:
            # Write first: an SQLite transaction that reads before it writes can fail to upgrade its lock.
            updated = await session.execute(update(RunStepRow).where(*key).values(**values))
            if not getattr(updated, "rowcount", 0):
                step = RunStepRow(run_id=run_id, group=progress.group, step=progress.step, **values)
                if not await insert_new(session, step):
                    return  # no such run (a workflow started outside the catalog): nothing to report to
            rows = list(
                await session.scalars(
                    select(RunStepRow)
                    .where(RunStepRow.run_id == run_id, RunStepRow.group == progress.group)
                    .order_by(RunStepRow.step)
                )
            )
            mean = sum(r.percent for r in rows) / len(rows)
            percent = round(span[0] + (span[1] - span[0]) * mean / 100)
            stage = f"{progress.group}: " + ", ".join(f"{r.step} {r.percent}%" for r in rows)
            await session.execute(
                update(RunRow)
                .where(RunRow.id == run_id, RunRow.status.not_in([s.value for s in TERMINAL_STATUSES]))
                .values(
                    progress=func.max(RunRow.progress, percent)
                    if self.db.is_sqlite
                    else func.greatest(RunRow.progress, percent),
                    stage=stage[:200],
                    updated_at=utcnow(),
                )
            )

    async def count(self) -> int:
        """How many run records exist (all tenants): for checks and operators' tooling."""
        async with self._sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(RunRow)) or 0)
