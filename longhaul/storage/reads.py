"""Reading run records: one run, pages of a tenant's runs by filter and cursor, counts for the dashboard,
and what the reconcile sweep and the change streams look for."""

from __future__ import annotations

import base64
import binascii
import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, Integer, and_, func, literal, or_, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from longhaul.db import Database, as_utc, utcnow
from longhaul.models import TERMINAL_STATUSES, LogLine, RunPage, RunRecord, RunStatus, StepProgress
from longhaul.records import (
    RunLogRow,
    RunRow,
    RunStepRow,
    RunTagRow,
    record_of_row,
    tags_of,
)
from longhaul.waitpoints import WaitpointStore

MAX_LOG_LINES = 500  # a run's detail shows its newest lines; the table keeps them all


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
    children_of: str | None = None  # the runs this run started: children, replays, runs of events it emitted


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
        started = or_(RunRow.parent_run_id == where.children_of, RunRow.replay_of == where.children_of)
        conditions.append(or_(started, emitted))
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


class RunReads:
    """Reading run records (see :class:`longhaul.storage.RunStore`)."""

    db: Database
    waitpoints: WaitpointStore
    _sessions: async_sessionmaker[AsyncSession]

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
            record = record_of_row(row, tags, lines, steps)
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
        return await self._records_where(RunRow.id.in_(run_ids)) if run_ids else []

    async def children(self, parent_run_id: str, event_ids: Sequence[str]) -> builtins.list[RunRecord]:
        """The runs ``parent_run_id`` started (``trigger_and_wait``) with these event ids (without logs)."""
        return await self._records_where(
            RunRow.parent_run_id == parent_run_id, RunRow.event_id.in_(list(event_ids))
        )

    async def _records_where(self, *conditions: Any) -> builtins.list[RunRecord]:
        """The records (with tags, without logs) of the runs matching ``conditions``, in no order."""
        async with self._sessions() as session:
            rows = list(await session.scalars(select(RunRow).where(*conditions)))
            tags = await tags_of(session, [row.id for row in rows])
        return [record_of_row(row, tags.get(row.id, [])) for row in rows]

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
        return [record_of_row(row, tags.get(row.id, [])) for row in reversed(rows)]

    async def count_matching(self, where: RunFilter) -> int:
        """How many runs ``where`` matches."""
        async with self._sessions() as session:
            return int(
                await session.scalar(select(func.count()).select_from(RunRow).where(*_matching(where))) or 0
            )

    async def page(self, where: RunFilter, *, limit: int = 50, cursor: str | None = None) -> RunPage:
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
            runs=[record_of_row(row, tags.get(row.id, [])) for row in page],
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
        has taken but not yet started is the dispatcher's to finish (longhaul.queue), and a paused run
        waits for a person: neither is stuck."""
        being_started = and_(RunRow.claimed_at.is_not(None), RunRow.dispatched_at.is_(None))
        statement = (
            select(RunRow)
            .where(
                RunRow.status.in_([RunStatus.QUEUED, RunStatus.RUNNING]),
                RunRow.updated_at < before,
                ~being_started,
                RunRow.paused_at.is_(None),
            )
            .order_by(RunRow.updated_at)
            .limit(limit)
        )
        async with self._sessions() as session:
            return [record_of_row(row, []) for row in await session.scalars(statement)]

    async def count_replays(self, run_id: str) -> int:
        async with self._sessions() as session:
            return int(await session.scalar(select(func.count()).where(RunRow.replay_of == run_id)) or 0)

    async def count(self) -> int:
        """How many run records exist (all tenants): for checks and operators' tooling."""
        async with self._sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(RunRow)) or 0)
