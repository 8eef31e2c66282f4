"""Webhook dead letters: authentic (signed) webhooks that could not be processed.

A provider retries any answer but 2xx, for days. A webhook that is signed but unprocessable (a shape the
code does not handle, a payload that fails its event schema) will never succeed however often it is
sent, so it is acknowledged and kept here instead, with the reason, for an operator to read and
re-deliver once the cause is fixed (``longhaul webhooks dead-letters``, ``… redeliver ID``). One row per
provider event: the provider's own retries of it count as attempts, not new letters.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text, select, update
from sqlalchemy.orm import Mapped, mapped_column

from longhaul.db import Base, Database, as_utc, insert_new, utcnow
from longhaul.models import DeadLetter, DeadLetterStatus


class DeadLetterRow(Base):
    __tablename__ = "webhook_dead_letters"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    source: Mapped[str] = mapped_column(String(50))
    event_id: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def dead_letter_id(source: str, event_id: str | None, body: bytes) -> str:
    """Derived, so the provider's retries of one event land on one row: from the provider's event id,
    or from the body when it names none."""
    identity = f"{source}/{event_id}".encode() if event_id else b"body/" + body
    return "dl_" + hashlib.sha256(identity).hexdigest()[:24]


class DeadLetters:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, source: str, event_id: str | None, body: bytes, reason: str) -> DeadLetter:
        """Keep (or count again) an unprocessable webhook; returns its dead letter."""
        now = utcnow()
        letter_id = dead_letter_id(source, event_id, body)
        async with self.db.sessions.begin() as session:
            row = DeadLetterRow(
                id=letter_id,
                source=source,
                event_id=event_id[:200] if event_id else None,
                body=body.decode("utf-8", "replace").replace("\x00", "\ufffd"),  # storable text
                reason=reason,
                status=DeadLetterStatus.DEAD.value,
                attempts=1,
                received_at=now,
                updated_at=now,
            )
            if not await insert_new(session, row):
                await session.execute(
                    update(DeadLetterRow)
                    .where(DeadLetterRow.id == letter_id)
                    .values(
                        attempts=DeadLetterRow.attempts + 1,
                        reason=reason,
                        status=DeadLetterStatus.DEAD.value,
                        updated_at=now,
                    )
                )
        letter = await self.get(letter_id)
        assert letter is not None
        return letter

    async def get(self, letter_id: str) -> DeadLetter | None:
        async with self.db.session() as session:
            row = await session.get(DeadLetterRow, letter_id)
        return _letter(row) if row else None

    async def list(self, status: DeadLetterStatus | None = None, limit: int = 100) -> list[DeadLetter]:
        """Newest first."""
        statement = select(DeadLetterRow).order_by(DeadLetterRow.updated_at.desc()).limit(limit)
        if status is not None:
            statement = statement.where(DeadLetterRow.status == status.value)
        async with self.db.session() as session:
            return [_letter(row) for row in await session.scalars(statement)]

    async def resolve(self, letter_id: str) -> None:
        """A re-delivery went through: the letter stays, for the record, as ``redelivered``."""
        async with self.db.sessions.begin() as session:
            await session.execute(
                update(DeadLetterRow)
                .where(DeadLetterRow.id == letter_id)
                .values(status=DeadLetterStatus.REDELIVERED.value, updated_at=utcnow())
            )


def _letter(row: DeadLetterRow) -> DeadLetter:
    return DeadLetter(
        id=row.id,
        source=row.source,
        event_id=row.event_id,
        body=row.body,
        reason=row.reason,
        status=DeadLetterStatus(row.status),
        attempts=row.attempts,
        received_at=as_utc(row.received_at) or row.received_at,
        updated_at=as_utc(row.updated_at) or row.updated_at,
    )
