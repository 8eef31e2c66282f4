"""Tenant schedules: an event a tenant has sent for it on a cron or interval, made at run time (the API, the
CLI, the clients, the dashboard), as a product gives each customer their own nightly report.

Each is a Temporal Schedule (:mod:`longhaul.server.tenant_schedules`) whose action starts the engine's
``tenant-schedule`` workflow, which sends the event for the tenant through the run queue, so every run it
makes takes the subscription's flow control, then waits for those runs to close (so the overlap policy
is about the tenant's runs). Its definition is kept in app storage (:mod:`longhaul.storage.schedules`),
one row per tenant and external id: the unique key makes a repeated create return the first, and a
tenant's list is read from there (Temporal's list of schedules is its visibility store, which lags behind
a create). This module holds what they are (pydantic only: the client imports it).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


def temporal_id(tenant: str, schedule: str) -> str:
    """The schedule's id in Temporal: readable there, and outside ``longhaul.`` (the declared ones, which
    ``schedules sync`` owns)."""
    return f"tenant/{tenant}/{schedule}"
