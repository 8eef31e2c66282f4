"""Waitpoint tokens in app storage: a run waits until a person or another system completes its token.

The token row is the truth. Completing one is a conditional UPDATE (still ``waiting``, before its
``timeout_at``), so of two completions racing — an approver's click and a colleague's, the API and the
callback URL — exactly one wins and the other is told who did; the workflow's own timeout goes through
the same condition, so a token is completed *or* timed out, never both. The winner's output then
reaches the workflow by signal; a signal that could not be sent (Temporal down) stays in the row as
undelivered and is sent again (:meth:`WaitpointStore.undelivered`), and the workflow, when its timer
fires, reads the row before it gives up, so a completion is never lost.

Ids derive from the workflow run and the wait's sequence number in it, so a retried create finds its
row (primary key). Callback URLs are signed (:mod:`longhaul.signing`, HMAC-SHA256 of the id): anyone
holding the URL can complete that one token, once, before it times out, and nothing else.
"""

from __future__ import annotations

import builtins
import hashlib
import json
from datetime import datetime
from typing import Any
from typing import cast as typed

from sqlalchemy import JSON, DateTime, Index, String, Table, Text, cast, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from longhaul.alerts import enqueue
from longhaul.config import Settings
from longhaul.db import Base, Database, as_utc, insert_ignoring_duplicates, utcnow
from longhaul.models import AlertKind, Waitpoint, WaitpointStatus
from longhaul.signing import signature, signed

WAITPOINT_SIGNAL = "longhaul.waitpoint"  # the signal that carries a completion to its run
CALLBACK_PATH = "/api/waitpoints/{id}/callback/{signature}"


class WaitpointRow(Base):
    __tablename__ = "waitpoints"
    __table_args__ = (
        Index("ix_waitpoints_listing", "tenant", "created_at", "id"),
        Index("ix_waitpoints_undelivered", "status", "delivered_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[str] = mapped_column(String(40), index=True)
    workflow_id: Mapped[str] = mapped_column(String(400))
    kind: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[Any] = mapped_column(JSON)
    timeout_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_by: Mapped[str | None] = mapped_column(String(100))
    output: Mapped[Any] = mapped_column(JSON, nullable=True)
    # When the completion's signal reached the workflow (None while it has not: sent again until it has).
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


_TABLE = typed(Table, WaitpointRow.__table__)


def waitpoint_id(workflow_id: str, run_id: str, sequence: int) -> str:
    """The id of a workflow run's ``sequence``-th wait: the same on every retry and replay of it."""
    return "wp_" + hashlib.sha256(f"{workflow_id}/{run_id}/waitpoint/{sequence}".encode()).hexdigest()[:24]


def callback_signature(key: bytes, token_id: str) -> str:
    return signature(key, "waitpoint", token_id)


def signature_matches(key: bytes, token_id: str, presented: str) -> bool:
    return signed(key, "waitpoint", token_id, presented)


def callback_url(settings: Settings, token_id: str, key: bytes) -> str:
    """The token's callback URL, signed with ``key`` (:func:`longhaul.signing.signing_key`)."""
    signed_id = callback_signature(key, token_id)
    return settings.api_url + CALLBACK_PATH.format(id=token_id, signature=signed_id)


def _waitpoint(row: WaitpointRow) -> Waitpoint:
    return Waitpoint(
        id=row.id,
        tenant=row.tenant,
        run_id=row.run_id,
        workflow_id=row.workflow_id,
        kind=row.kind,
        status=WaitpointStatus(row.status),
        description=row.description,
        tags=row.tags or [],
        timeout_at=as_utc(row.timeout_at) or row.timeout_at,
        created_at=as_utc(row.created_at) or row.created_at,
        completed_at=as_utc(row.completed_at),
        completed_by=row.completed_by,
        output=row.output,
    )


async def cancel_waiting(conn: AsyncConnection, run_ids: list[str]) -> None:
    """Within the transaction that closes ``run_ids``: their waiting tokens are cancelled (a closed run
    waits for nothing), so a waiting token always belongs to an open run."""
    await conn.execute(
        update(_TABLE)
        .where(_TABLE.c.run_id.in_(run_ids), _TABLE.c.status == WaitpointStatus.WAITING.value)
        .values(status=WaitpointStatus.CANCELLED.value, completed_at=utcnow())
    )


class WaitpointStore:
    """Reads and writes waitpoint tokens."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._insert = insert_ignoring_duplicates(_TABLE, is_sqlite=db.is_sqlite)

    async def create(self, token: Waitpoint) -> Waitpoint:
        """Insert ``token`` (waiting); a retry finds the row it wrote, whatever has happened to it since."""
        values = token.model_dump(exclude={"callback_url"})
        values.update(status=WaitpointStatus.WAITING.value, delivered_at=None)
        async with self.db.engine.begin() as conn:
            await conn.execute(self._insert, values)
        found = await self.get(token.id)
        assert found is not None
        return found

    async def get(self, token_id: str, *, tenant: str | None = None) -> Waitpoint | None:
        async with self.db.sessions() as session:
            row = await session.get(WaitpointRow, token_id)
        if row is None or (tenant is not None and row.tenant != tenant):
            return None
        return _waitpoint(row)

    async def of_run(self, run_id: str) -> list[Waitpoint]:
        statement = (
            select(WaitpointRow).where(WaitpointRow.run_id == run_id).order_by(WaitpointRow.created_at)
        )
        async with self.db.sessions() as session:
            return [_waitpoint(row) for row in await session.scalars(statement)]

    async def list(
        self,
        tenant: str,
        *,
        status: WaitpointStatus | None = None,
        kind: str | None = None,
        run_id: str | None = None,
        tag: str | None = None,
        limit: int = 50,
    ) -> list[Waitpoint]:
        """The tenant's tokens, newest first, filtered (``tag``: those carrying it)."""
        statement = select(WaitpointRow).where(WaitpointRow.tenant == tenant)
        if status is not None:
            statement = statement.where(WaitpointRow.status == status.value)
        if kind is not None:
            statement = statement.where(WaitpointRow.kind == kind)
        if run_id is not None:
            statement = statement.where(WaitpointRow.run_id == run_id)
        if tag is not None:
            # A token's tags are a short JSON list, and a tag holds no quote: its JSON string is exact.
            tagged = cast(WaitpointRow.tags, Text).contains(json.dumps(tag), autoescape=True)
            statement = statement.where(tagged)
        statement = statement.order_by(WaitpointRow.created_at.desc(), WaitpointRow.id.desc()).limit(limit)
        async with self.db.sessions() as session:
            return [_waitpoint(row) for row in await session.scalars(statement)]

    async def complete(
        self, token_id: str, output: Any, *, by: str, tenant: str | None = None
    ) -> tuple[Waitpoint | None, bool]:
        """Complete the token if it is still waiting and in time. Returns the token as it is now (None if
        unknown, or another tenant's) and whether this call completed it."""
        now = utcnow()
        condition = [
            _TABLE.c.id == token_id,
            _TABLE.c.status == WaitpointStatus.WAITING.value,
            _TABLE.c.timeout_at > now,
        ]
        if tenant is not None:
            condition.append(_TABLE.c.tenant == tenant)
        statement = (
            update(_TABLE)
            .where(*condition)
            .values(status=WaitpointStatus.COMPLETED.value, completed_at=now, completed_by=by, output=output)
        )
        async with self.db.engine.begin() as conn:
            changed = bool(getattr(await conn.execute(statement), "rowcount", 0))
        return await self.get(token_id, tenant=tenant), changed

    async def time_out(self, token_id: str) -> Waitpoint | None:
        """The workflow's timer fired: time the token out unless a completion got there first (returned
        as it is, so the workflow takes that completion)."""
        statement = (
            update(_TABLE)
            .where(_TABLE.c.id == token_id, _TABLE.c.status == WaitpointStatus.WAITING.value)
            .values(status=WaitpointStatus.TIMED_OUT.value, completed_at=utcnow())
            .returning(_TABLE.c.run_id)
        )
        async with self.db.engine.begin() as conn:
            timed_out = [(token_id, run_id) for run_id in await conn.scalars(statement)]
            await enqueue(conn, AlertKind.WAITPOINT_TIMED_OUT, timed_out)  # alerts, in its transaction
        return await self.get(token_id)

    async def undelivered(self, completed_before: datetime, limit: int = 100) -> builtins.list[Waitpoint]:
        """Completed tokens whose signal has not reached their run (oldest first)."""
        statement = (
            select(WaitpointRow)
            .where(
                WaitpointRow.status == WaitpointStatus.COMPLETED.value,
                WaitpointRow.delivered_at.is_(None),
                WaitpointRow.completed_at < completed_before,
            )
            .order_by(WaitpointRow.completed_at)
            .limit(limit)
        )
        async with self.db.sessions() as session:
            return [_waitpoint(row) for row in await session.scalars(statement)]

    async def delivered(self, token_id: str) -> None:
        async with self.db.engine.begin() as conn:
            await conn.execute(update(_TABLE).where(_TABLE.c.id == token_id).values(delivered_at=utcnow()))
