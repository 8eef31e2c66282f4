"""Bulk actions on runs: cancel, replay or resume every run a filter matches, a page at a time.

A bulk action is itself a run (``longhaul/workflows/bulk.py``): its record is the record of the action (who
asked what, progress, counts, outcome). These activities count what the filter matches and act on one page.
Acting on a run belongs to the run service (what the API does for one run); the worker injects it
here as a :class:`RunActor`, which keeps imports one-way. Each action is safe to repeat when a page is
retried: a cancel or resume of a run done already is refused and counted as skipped, and a bulk replay
names its new run after the bulk action, so a second replay of the same run finds the first.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field
from temporalio import activity

from longhaul.events import EventPayload, EventType
from longhaul.models import ID_PATTERN, TAG_PATTERN, BulkAction, RunStatus
from longhaul.storage import RunFilter, RunStore

PAGE = 200  # runs acted on per activity


class Outcome(StrEnum):
    DONE = "done"
    SKIPPED = "skipped"  # the run's state does not allow it (already cancelled, not failed, …)
    FAILED = "failed"  # an error: the run is left as it was


class BulkFilter(BaseModel):
    """Which runs (all of the tenant's where a field is unset)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt filter must not widen the action to every run

    workflow: str | None = Field(default=None, max_length=100)
    status: RunStatus | None = None
    event: str | None = Field(default=None, max_length=100)
    tag: str | None = Field(default=None, max_length=100, pattern=TAG_PATTERN)
    created_after: datetime | None = None
    created_before: datetime | None = None

    def of(self, tenant: str, excluded: tuple[str, ...] = ()) -> RunFilter:
        return RunFilter(tenant=tenant, excluded=excluded, **self.model_dump())


class BulkRequested(EventPayload):
    """``longhaul.bulk.requested``: act on every run ``filter`` matches (runs created since are not)."""

    action: BulkAction
    filter: BulkFilter = Field(default_factory=BulkFilter)
    reason: str | None = Field(default=None, max_length=500, description="Why: kept in the action's record.")


BULK_REQUESTED = EventType("longhaul.bulk.requested", 1, BulkRequested)


class BulkPage(BaseModel):
    tenant: str
    action: BulkAction
    filter: BulkFilter  # with created_before set: the runs that existed when the action began
    key: str = Field(pattern=ID_PATTERN, description="Names the replays of this action (once per run).")
    cursor: str | None = None
    own_run: str | None = Field(
        default=None,
        description="The bulk action's own run, which it never acts on (an empty filter matches it).",
    )

    reason: str | None = Field(default=None, description="Why, as the action's request said.")

    @property
    def by(self) -> str:
        """Who acts, as the records of the runs it cancels say."""
        return f"bulk action {self.own_run}" if self.own_run else "a bulk action"

    def where(self) -> RunFilter:
        """The runs this action acts on: those its filter matches, but itself."""
        return self.filter.of(self.tenant, excluded=(self.own_run,) if self.own_run else ())


class PageResult(BaseModel):
    done: list[str] = Field(default_factory=list)
    skipped: dict[str, str] = Field(default_factory=dict, description="run id → why")
    failed: dict[str, str] = Field(default_factory=dict, description="run id → error")
    next_cursor: str | None = None


class RunActor(Protocol):
    """Acts on one run as the API would; returns the outcome and a word on it (an error, a new run id)."""

    async def __call__(self, page: BulkPage, run_id: str) -> tuple[Outcome, str]: ...


class BulkActivities:
    def __init__(self, store: RunStore, act: RunActor) -> None:
        self.store = store
        self.act = act

    @activity.defn(name="bulk.count")
    async def count(self, page: BulkPage) -> int:
        return await self.store.count_matching(page.where())

    @activity.defn(name="bulk.act_page")
    async def act_page(self, page: BulkPage) -> PageResult:
        """Act on the next :data:`PAGE` matching runs after ``page.cursor`` (newest first)."""
        found = await self.store.page(page.where(), limit=PAGE, cursor=page.cursor)
        result = PageResult(next_cursor=found.next_cursor)
        for run in found.runs:
            outcome, word = await self.act(page, run.id)
            if outcome == Outcome.DONE:
                result.done.append(run.id)
            elif outcome == Outcome.SKIPPED:
                result.skipped[run.id] = word
            else:
                result.failed[run.id] = word
            activity.heartbeat(run.id)
        return result
