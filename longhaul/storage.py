"""App storage: durable run records in SQLite (default) or PostgreSQL, through SQLAlchemy 2 async.

Run records are the product's truth: the API writes one (``queued``) before it starts a workflow, the
worker moves it through its statuses, and status pages read it. Uniqueness of a run per
(tenant, event, event id, workflow) is enforced here by constraints, not by hoping callers behave.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, Text, UniqueConstraint, event, func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from longhaul.models import TERMINAL_STATUSES, RunRecord, RunStatus, RunUpdate


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class RunRow(Base):
    __tablename__ = "runs"
    __table_args__ = (UniqueConstraint("tenant", "event", "event_id", "workflow", name="uq_runs_event"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    workflow: Mapped[str] = mapped_column(String(100), index=True)
    workflow_id: Mapped[str] = mapped_column(String(400), unique=True)
    event: Mapped[str] = mapped_column(String(100), index=True)
    event_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), index=True)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    stage: Mapped[str | None] = mapped_column(String(200))
    input: Mapped[Any] = mapped_column(JSON)
    output: Mapped[Any] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    def to_record(self) -> RunRecord:
        return RunRecord.model_validate(
            {
                **{c.key: getattr(self, c.key) for c in RunRow.__table__.columns},
                # SQLite drops time zones; every stored time is UTC.
                **{
                    k: _as_utc(getattr(self, k))
                    for k in ("created_at", "started_at", "finished_at", "updated_at")
                },
            }
        )


def _as_utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _tune_sqlite(engine: AsyncEngine) -> None:
    """WAL lets the API read while the worker writes; busy_timeout makes writers queue instead of failing."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()


class RunStore:
    """Reads and writes run records. One per process; safe to share across tasks of one event loop."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite and parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_async_engine(url, pool_pre_ping=not self.is_sqlite)
        if self.is_sqlite:
            _tune_sqlite(self.engine)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def create_schema(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(select(1))

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
    ) -> tuple[RunRecord, bool]:
        """Insert a ``queued`` record; if the same run exists already, return it. Second item: inserted?"""
        now = utcnow()
        row = RunRow(
            id=run_id,
            tenant=tenant,
            workflow=workflow,
            workflow_id=workflow_id,
            event=event,
            event_id=event_id,
            status=RunStatus.QUEUED,
            progress=0,
            input=input,
            attempts=0,
            created_at=now,
            updated_at=now,
        )
        try:
            async with self._sessions.begin() as session:
                session.add(row)
            return row.to_record(), True
        except IntegrityError:
            existing = await self.get(run_id)
            if existing is None:  # a different run holds the unique key: a caller bug, not a duplicate
                raise
            return existing, False

    async def get(self, run_id: str) -> RunRecord | None:
        async with self._sessions() as session:
            row = await session.get(RunRow, run_id)
            return row.to_record() if row else None

    async def delete_if_queued(self, run_id: str) -> None:
        """Remove a record whose workflow never started, so no record claims a run that does not exist."""
        async with self._sessions.begin() as session:
            row = await session.get(RunRow, run_id)
            if row is not None and row.status == RunStatus.QUEUED:
                await session.delete(row)

    async def apply(self, change: RunUpdate) -> bool:
        """Apply a worker-side update. A run that reached a final status is never changed again.

        Returns whether a record changed: a retried activity may apply the same update twice, harmlessly.
        """
        now = utcnow()
        values: dict[str, Any] = {"updated_at": now}
        if change.status is not None:
            values["status"] = change.status
            if change.status == RunStatus.RUNNING:
                values["started_at"] = func.coalesce(RunRow.started_at, now)
            if change.status.terminal:
                values["finished_at"] = now
                if change.status == RunStatus.COMPLETED:
                    values["progress"] = 100
        for field in ("progress", "stage", "error"):
            value = getattr(change, field)
            if value is not None:
                values[field] = value
        if change.output is not None:
            values["output"] = change.output
        if change.attempt is not None:
            values["attempts"] = change.attempt
        statement = (
            update(RunRow)
            .where(RunRow.id == change.run_id, RunRow.status.not_in([s.value for s in TERMINAL_STATUSES]))
            .values(**values)
        )
        async with self._sessions.begin() as session:
            result = await session.execute(statement)
        return bool(getattr(result, "rowcount", 0))

    async def count(self) -> int:
        """How many run records exist (all tenants): for checks and operators' tooling."""
        async with self._sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(RunRow)) or 0)
