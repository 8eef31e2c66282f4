"""The activity that lets a workflow emit an event through the event catalog (e.g. "video processed").

Workflows never do I/O, so emitting is an activity. What emitting means (validate, record, start the
subscribers) belongs to the run service; the worker injects it here as an :class:`Emitter`, which keeps
imports one-way. The event id is derived from the emitting workflow, so a retried emit is a duplicate that
the catalog dedupes: subscribers start once.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError


class EmitRequest(BaseModel):
    name: str
    event_id: str
    tenant: str
    payload: dict[str, Any]
    tags: list[str] = Field(default_factory=list)


class InvalidEmitError(Exception):
    """The emitted event does not fit its schema (a bug in the emitting workflow: never retried)."""


class Emitter(Protocol):
    async def __call__(self, request: EmitRequest) -> list[str]:
        """Send the event; the ids of the runs it reached."""
        ...


class EventActivities:
    def __init__(self, emit: Emitter) -> None:
        self._emit = emit

    @activity.defn(name="emit_event")
    async def emit_event(self, request: EmitRequest) -> list[str]:
        """Send the event; the ids of the runs it reached (a workflow's own emit ignores them)."""
        try:
            return await self._emit(request)
        except InvalidEmitError as error:
            raise ApplicationError(str(error), type="InvalidEvent", non_retryable=True) from error
