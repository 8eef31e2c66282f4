"""Tenant schedules' rows in app storage (what they are: :mod:`longhaul.tenant_schedules`; their Temporal
side: :mod:`longhaul.server.tenant_schedules`)."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any, cast

from sqlalchemy import JSON, Boolean, DateTime, Float, String, Table, delete, func, select, update
from sqlalchemy.orm import Mapped, mapped_column

from longhaul.db import Base, Database, as_utc, insert_ignoring_duplicates, utcnow
from longhaul.tenant_schedules import ScheduleRequest, TenantSchedule, temporal_id


class TenantScheduleRow(Base):
    __tablename__ = "tenant_schedules"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the tenant's own (external) id
    schedule_id: Mapped[str] = mapped_column(String(200), unique=True)
    event: Mapped[str] = mapped_column(String(100))
    payload: Mapped[Any] = mapped_column(JSON)
    cron: Mapped[str | None] = mapped_column(String(200))
    interval_seconds: Mapped[float | None] = mapped_column(Float)
    timezone: Mapped[str] = mapped_column(String(64))
    overlap: Mapped[str] = mapped_column(String(16))
    catchup_window_seconds: Mapped[float] = mapped_column(Float)
    paused: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str] = mapped_column(String(500))
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


_SCHEDULES = cast(Table, TenantScheduleRow.__table__)


def _record(row: Any) -> TenantSchedule:
    values = dict(row)
    for key in ("created_at", "updated_at"):
        values[key] = as_utc(values[key])
    return TenantSchedule.model_validate(values)


class TenantScheduleStore:
    """The tenant schedules' rows (their Temporal side: :mod:`longhaul.server.tenant_schedules`)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._insert = insert_ignoring_duplicates(_SCHEDULES, is_sqlite=db.is_sqlite)

    async def add(self, tenant: str, request: ScheduleRequest, by: str | None) -> tuple[TenantSchedule, bool]:
        """Keep ``request`` for ``tenant``, or find the schedule of that id; second item: added now?"""
        now = utcnow()
        values = request.model_dump(mode="json") | {
            "tenant": tenant, "schedule_id": temporal_id(tenant, request.id), "created_by": by,
            "created_at": now, "updated_at": now,
        }  # fmt: skip
        async with self.db.engine.begin() as conn:
            added = bool(getattr(await conn.execute(self._insert, [values]), "rowcount", 0))
        found = await self.get(tenant, request.id)
        assert found is not None
        return found, added

    async def get(self, tenant: str, schedule: str) -> TenantSchedule | None:
        statement = select(_SCHEDULES).where(_SCHEDULES.c.tenant == tenant, _SCHEDULES.c.id == schedule)
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(statement)).mappings().first()
        return _record(row) if row is not None else None

    async def list(self, tenant: str) -> builtins.list[TenantSchedule]:
        statement = select(_SCHEDULES).where(_SCHEDULES.c.tenant == tenant).order_by(_SCHEDULES.c.id)
        async with self.db.engine.connect() as conn:
            return [_record(row) for row in (await conn.execute(statement)).mappings()]

    async def change(self, tenant: str, schedule: str, values: dict[str, Any]) -> TenantSchedule | None:
        """Write ``values`` (already applied in Temporal); None if there is no such schedule."""
        statement = (
            update(_SCHEDULES)
            .where(_SCHEDULES.c.tenant == tenant, _SCHEDULES.c.id == schedule)
            .values(**values, updated_at=utcnow())
        )
        async with self.db.engine.begin() as conn:
            await conn.execute(statement)
        return await self.get(tenant, schedule)

    async def remove(self, tenant: str, schedule: str) -> bool:
        statement = delete(_SCHEDULES).where(_SCHEDULES.c.tenant == tenant, _SCHEDULES.c.id == schedule)
        async with self.db.engine.begin() as conn:
            return bool(getattr(await conn.execute(statement), "rowcount", 0))

    async def count(self, tenant: str) -> int:
        async with self.db.engine.connect() as conn:
            statement = select(func.count()).where(_SCHEDULES.c.tenant == tenant)
            return int(await conn.scalar(statement) or 0)
