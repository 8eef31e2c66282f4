"""The activities behind ``trigger_and_wait`` (longhaul/workflows/children.py): start child runs through the
run queue, and cancel them with their parent.

Starting runs belongs to the run service; the worker injects it as :class:`ChildRuns`, which keeps
imports one-way. Both are safe to repeat: the children's event ids derive from the parent's run and its
count of triggers, so a retried trigger reaches the runs the first made (and waits for them once), and a
cancel of a closed run is refused and skipped.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from longhaul.models import ChildRun


class TriggerRequest(BaseModel):
    """Runs a parent starts and waits for: one per payload, each sent as ``event`` with its event id
    (``workflow``: only that workflow's subscription to it starts a run; ``event`` unset: the workflow's
    only subscription names it)."""

    parent_run_id: str
    tenant: str
    event: str | None = None
    workflow: str | None = None
    payloads: list[dict[str, Any]]
    event_ids: list[str]
    tags: list[str] = Field(default_factory=list)


class CancelChildren(BaseModel):
    """The open runs among the parent's children made by ``event_ids``, to cancel saying ``reason``."""

    parent_run_id: str
    event_ids: list[str]
    reason: str


class InvalidTriggerError(Exception):
    """The trigger cannot be made (an unknown event or workflow, a payload that does not fit, an event that
    starts no run): a bug in the parent workflow, never retried."""


class ChildRuns(Protocol):
    async def trigger(self, request: TriggerRequest) -> list[ChildRun]:
        """Record the children (one per payload, in order), with the parent waiting for each."""
        ...

    async def cancel(self, request: CancelChildren) -> list[str]:
        """Cancel the parent's open children of ``request``; the ids of those cancelled."""
        ...


class ChildActivities:
    def __init__(self, children: ChildRuns) -> None:
        self._children = children

    @activity.defn(name="runs.trigger")
    async def trigger(self, request: TriggerRequest) -> list[ChildRun]:
        """Start the children through the run queue; each as it is now (a child that existed already,
        e.g. a retried trigger, as it is)."""
        try:
            return await self._children.trigger(request)
        except InvalidTriggerError as error:
            raise ApplicationError(str(error), type="InvalidTrigger", non_retryable=True) from error

    @activity.defn(name="runs.cancel_children")
    async def cancel(self, request: CancelChildren) -> list[str]:
        return await self._children.cancel(request)
