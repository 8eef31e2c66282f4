"""Tenant schedules: an event a tenant has sent for it on a cron or interval, made at run time (the API, the
CLI, the clients, the dashboard), as a product gives each customer their own nightly report.

Each is a Temporal Schedule (:mod:`longhaul.server.tenant_schedules`) whose action starts the engine's
``tenant-schedule`` workflow, which sends the event for the tenant through the run queue, so every run it
makes takes the subscription's flow control, then waits for those runs to close (so the overlap policy
is about the tenant's runs). Its definition is kept here, one row per tenant and external id: the
unique key makes a repeated create return the first, and a tenant's list is read from here (Temporal's
list of schedules is its visibility store, which lags behind a create).
"""

from __future__ import annotations

import builtins
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import JSON, Boolean, DateTime, Float, String, Table, delete, func, select, update
from sqlalchemy.orm import Mapped, mapped_column

from longhaul.db import Base, Database, as_utc, insert_ignoring_duplicates, utcnow

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
MIN_INTERVAL_SECONDS = 60.0  # a tenant's schedule fires at most once a minute
MAX_CATCHUP_SECONDS = 7 * 24 * 3600.0


class Overlap(StrEnum):
    """What a firing does while the runs of the previous one are still open (Temporal's overlap policy):
    ``skip`` it, keep one (``buffer_one``) or all (``buffer_all``) to send once they close, or send it
    anyway (``allow_all``)."""

    SKIP = "skip"
    BUFFER_ONE = "buffer_one"
    BUFFER_ALL = "buffer_all"
    ALLOW_ALL = "allow_all"


class ScheduledEvent(BaseModel):
    """The input of each firing (the ``tenant-schedule`` workflow): what to send for whom, and whether to
    wait for its runs (not for ``allow_all``)."""

    tenant: str
    schedule: str
    event: str
    payload: dict[str, Any]
    wait: bool = True


class ScheduleChange(BaseModel):
    """What a PATCH changes (each field optional; what is not given stays)."""

    model_config = ConfigDict(extra="forbid")

    payload: dict[str, Any] | None = Field(default=None, description="The event's payload.")
    cron: Annotated[str | None, Field(max_length=200, description="A cron expression (5 fields).")] = None
    interval_seconds: Annotated[
        float | None, Field(ge=MIN_INTERVAL_SECONDS, le=366 * 24 * 3600, description="Or every this many s.")
    ] = None
    timezone: Annotated[str | None, Field(max_length=64, description="IANA zone the cron is read in.")] = None
    overlap: Overlap | None = None
    catchup_window_seconds: Annotated[
        float | None,
        Field(
            ge=10, le=MAX_CATCHUP_SECONDS, description="Firings missed while down are made up within this."
        ),
    ] = None
    paused: bool | None = None
    note: Annotated[str | None, Field(max_length=500)] = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as error:
                raise ValueError(f"unknown time zone '{value}' (an IANA name, e.g. Europe/Paris)") from error
        return value

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, value: str | None) -> str | None:
        if value is not None and not (value.startswith("@") or len(value.split()) == 5):
            raise ValueError(
                "a cron expression has 5 fields (minute hour day month weekday), e.g. '0 3 * * *'"
            )
        return value


class ScheduleRequest(ScheduleChange):
    """A tenant schedule to create: ``cron`` or ``interval_seconds``."""

    id: Annotated[
        str, Field(pattern=ID_PATTERN, description="Your id for it, unique in your tenant: a repeat create "
                   "with it returns the first.")
    ]  # fmt: skip
    event: Annotated[str, Field(min_length=1, max_length=100, description="The event sent at each firing.")]
    payload: dict[str, Any] = Field(default_factory=dict, description="The event's payload.")
    timezone: Annotated[str, Field(max_length=64)] = "UTC"
    overlap: Overlap = Overlap.SKIP
    catchup_window_seconds: Annotated[float, Field(ge=10, le=MAX_CATCHUP_SECONDS)] = 3600.0
    paused: bool = False
    note: Annotated[str, Field(max_length=500)] = ""

    @model_validator(mode="after")
    def _one_spec(self) -> ScheduleRequest:
        if (self.cron is None) == (self.interval_seconds is None):
            raise ValueError("give exactly one of cron and interval_seconds")
        return self


class TenantSchedule(BaseModel):
    """A tenant's schedule: what it sends when, and (from Temporal) its next and recent firings."""

    id: str
    tenant: str
    schedule_id: str = Field(description="Its id in Temporal (the Temporal UI's Schedules page).")
    event: str
    payload: dict[str, Any]
    cron: str | None
    interval_seconds: float | None
    timezone: str
    overlap: Overlap
    catchup_window_seconds: float
    paused: bool
    note: str
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    next_runs: list[datetime] = Field(default_factory=list)
    recent_runs: list[datetime] = Field(default_factory=list)


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


def temporal_id(tenant: str, schedule: str) -> str:
    """The schedule's id in Temporal: readable there, and outside ``longhaul.`` (the declared ones, which
    ``schedules sync`` owns)."""
    return f"tenant/{tenant}/{schedule}"


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
