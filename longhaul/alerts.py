"""Failure alerts: where a tenant wants to hear that a run failed or expired, or a waitpoint timed out.

A tenant declares *destinations* (a signed HTTP webhook, or the log), each for all its workflows or one,
and for some kinds of alert. When a run closes failed (or timed out) or expired, or a waitpoint times out,
one *delivery* per matching destination is written **in the same transaction** as that change (an outbox:
no alert without its failure, no failure without its alert), unique per destination, kind and subject, so
a retried update alerts once. :mod:`longhaul.server.alerts` delivers them, retrying with backoff.
"""

from __future__ import annotations

import builtins
import json
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from pydantic import BaseModel, Field, HttpUrl, model_validator
from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from longhaul.db import Base, Database, as_utc, insert_ignoring_duplicates, utcnow
from longhaul.models import AlertDestination, AlertKind, DestinationType
from longhaul.records import RUNS

MAX_ATTEMPTS = 20  # about a day of backoff (capped at an hour); then the delivery is given up
BACKOFF_CAP = timedelta(hours=1)


class AlertDestinationRow(Base):
    __tablename__ = "alert_destinations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    type: Mapped[str] = mapped_column(String(16))
    url: Mapped[str | None] = mapped_column(String(2000))
    secret: Mapped[str | None] = mapped_column(String(100))  # signs its webhooks (HMAC needs it itself)
    workflow: Mapped[str | None] = mapped_column(String(100))  # None: every workflow of the tenant
    kinds: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AlertDeliveryRow(Base):
    __tablename__ = "alert_deliveries"
    __table_args__ = (Index("ix_alert_deliveries_due", "delivered_at", "next_attempt_at"),)

    destination_id: Mapped[str] = mapped_column(
        ForeignKey("alert_destinations.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject: Mapped[str] = mapped_column(String(40), primary_key=True)  # the run's id, or the waitpoint's
    run_id: Mapped[str] = mapped_column(String(40), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # None: given up
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)


_DESTINATIONS = cast(Table, AlertDestinationRow.__table__)
_DELIVERIES = cast(Table, AlertDeliveryRow.__table__)


class DestinationRequest(BaseModel):
    """A destination to add: a webhook (``url``) or the log, for a workflow or all, for some kinds."""

    type: DestinationType = DestinationType.WEBHOOK
    url: HttpUrl | None = Field(default=None, description="Where webhooks are POSTed (type webhook).")
    workflow: str | None = Field(default=None, max_length=100, description="Only this workflow's runs.")
    kinds: list[AlertKind] = Field(default_factory=lambda: list(AlertKind), min_length=1)

    @model_validator(mode="after")
    def _url_for_webhooks(self) -> DestinationRequest:
        if (self.type == DestinationType.WEBHOOK) != (self.url is not None):
            raise ValueError("a webhook destination needs a url, a log destination has none")
        return self


class Delivery(BaseModel):
    """A delivery due, with where it goes."""

    destination: AlertDestination
    secret: str | None
    kind: AlertKind
    subject: str
    run_id: str
    attempts: int
    created_at: datetime


def _destination(row: Any) -> AlertDestination:
    return AlertDestination(
        id=row.id, tenant=row.tenant, type=DestinationType(row.type), url=row.url, workflow=row.workflow,
        kinds=row.kinds, created_at=as_utc(row.created_at) or row.created_at,
    )  # fmt: skip


async def enqueue(conn: AsyncConnection, kind: AlertKind, subjects: Sequence[tuple[str, str]]) -> None:
    """Within the transaction that made them: one delivery per destination that wants ``kind`` for each
    (subject, run id) of ``subjects`` (the run's tenant, and its workflow where the destination names
    one). Written again (a retried update), they are not doubled."""
    if not subjects:
        return
    now = utcnow()
    runs = {run_id for _, run_id in subjects}
    wanted = (
        select(_DESTINATIONS.c.id, RUNS.c.id)
        .join(RUNS, RUNS.c.tenant == _DESTINATIONS.c.tenant)
        .where(
            RUNS.c.id.in_(runs),
            or_(_DESTINATIONS.c.workflow.is_(None), _DESTINATIONS.c.workflow == RUNS.c.workflow),
            _DESTINATIONS.c.kinds.cast(Text).contains(json.dumps(kind.value)),
        )
    )
    pairs = list(await conn.execute(wanted))
    if not pairs:
        return
    insert = insert_ignoring_duplicates(_DELIVERIES, is_sqlite=conn.dialect.name == "sqlite")
    rows = [
        {"destination_id": destination, "kind": kind.value, "subject": subject, "run_id": run_id,
         "created_at": now, "next_attempt_at": now, "attempts": 0}
        for destination, of_run in pairs
        for subject, run_id in subjects
        if run_id == of_run
    ]  # fmt: skip
    await conn.execute(insert, rows)


class AlertStore:
    """Destinations and deliveries in app storage."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, tenant: str, request: DestinationRequest) -> AlertDestination:
        row = AlertDestinationRow(
            id="dst_" + secrets.token_hex(8),
            tenant=tenant,
            type=request.type.value,
            url=str(request.url) if request.url else None,
            secret=f"whsec_{secrets.token_hex(24)}" if request.type == DestinationType.WEBHOOK else None,
            workflow=request.workflow,
            kinds=[kind.value for kind in request.kinds],
            created_at=utcnow(),
        )
        async with self.db.sessions() as session, session.begin():
            session.add(row)
        return _destination(row).model_copy(update={"secret": row.secret})

    async def list(self, tenant: str) -> builtins.list[AlertDestination]:
        statement = select(AlertDestinationRow).where(AlertDestinationRow.tenant == tenant)
        async with self.db.sessions() as session:
            rows = await session.scalars(statement.order_by(AlertDestinationRow.created_at))
            return [_destination(row) for row in rows]

    async def remove(self, tenant: str, destination_id: str) -> bool:
        async with self.db.sessions() as session, session.begin():
            row = await session.get(AlertDestinationRow, destination_id)
            if row is None or row.tenant != tenant:
                return False
            await session.delete(row)
        return True

    async def claim_due(self, limit: int, lease: timedelta) -> builtins.list[Delivery]:
        """Deliveries due now, each taken for ``lease`` (its next attempt moved past it): another process
        takes it only if this one did not settle it by then."""
        now = utcnow()
        due = (
            select(
                _DESTINATIONS,  # its columns by their names: what _destination reads
                _DELIVERIES.c.kind,
                _DELIVERIES.c.subject,
                _DELIVERIES.c.run_id,
                _DELIVERIES.c.attempts,
                _DELIVERIES.c.created_at.label("delivery_created_at"),
            )
            .join(_DESTINATIONS, _DESTINATIONS.c.id == _DELIVERIES.c.destination_id)
            .where(_DELIVERIES.c.delivered_at.is_(None), _DELIVERIES.c.next_attempt_at <= now)
            .order_by(_DELIVERIES.c.next_attempt_at)
            .limit(limit)
        )
        taken: builtins.list[Delivery] = []
        async with self.db.engine.begin() as conn:
            for row in list(await conn.execute(due)):
                key = _key(row.id, row.kind, row.subject)
                claimed = await conn.execute(
                    update(_DELIVERIES)
                    .where(key, _DELIVERIES.c.next_attempt_at <= now, _DELIVERIES.c.delivered_at.is_(None))
                    .values(next_attempt_at=now + lease, attempts=_DELIVERIES.c.attempts + 1)
                )
                if getattr(claimed, "rowcount", 0):
                    taken.append(
                        Delivery(
                            destination=_destination(row), secret=row.secret, kind=AlertKind(row.kind),
                            subject=row.subject, run_id=row.run_id, attempts=row.attempts + 1,
                            created_at=as_utc(row.delivery_created_at) or row.delivery_created_at,
                        )
                    )  # fmt: skip
        return taken

    async def settle(self, delivery: Delivery, error: str | None) -> None:
        """Delivered (``error`` None), or failed: tried again after a backoff, or given up after
        :data:`MAX_ATTEMPTS`."""
        now = utcnow()
        if error is None:
            values: dict[str, Any] = {"delivered_at": now, "last_error": None}
        elif delivery.attempts >= MAX_ATTEMPTS:
            values = {
                "next_attempt_at": None,
                "last_error": f"given up after {delivery.attempts} attempts: {error}",
            }
        else:
            wait = min(timedelta(seconds=2**delivery.attempts), BACKOFF_CAP)
            values = {"next_attempt_at": now + wait, "last_error": error}
        key = _key(delivery.destination.id, delivery.kind.value, delivery.subject)
        async with self.db.engine.begin() as conn:
            await conn.execute(update(_DELIVERIES).where(key).values(**values))

    async def deliveries(self, tenant: str, run_id: str) -> builtins.list[dict[str, Any]]:
        """A run's deliveries as stored (for tests and operators)."""
        statement = (
            select(_DELIVERIES)
            .join(_DESTINATIONS, _DESTINATIONS.c.id == _DELIVERIES.c.destination_id)
            .where(_DESTINATIONS.c.tenant == tenant, _DELIVERIES.c.run_id == run_id)
        )
        async with self.db.engine.connect() as conn:
            return [dict(row._mapping) for row in await conn.execute(statement)]


def _key(destination_id: str, kind: str, subject: str) -> Any:
    return and_(
        _DELIVERIES.c.destination_id == destination_id,
        _DELIVERIES.c.kind == kind,
        _DELIVERIES.c.subject == subject,
    )
