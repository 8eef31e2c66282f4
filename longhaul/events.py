"""Event schemas: an event is a name, a version and a pydantic model of its payload.

Schemas live in the shared layer so the API (validation), the workflows (typed input) and the clients all
use the same model. Which workflows an event starts is declared in :mod:`workflows.catalog`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field


class EventPayload(BaseModel):
    """Base of every event payload: unknown fields are refused, so a typo is an error, not silently lost."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class EventType:
    """An event longhaul accepts: ``name`` on the wire, ``version`` of its schema, ``schema`` its payload."""

    name: str
    version: int
    schema: type[EventPayload]


class HelloRequested(EventPayload):
    """Payload of ``hello``: the smallest real pipeline, proving API → Temporal → worker → run record."""

    name: str = Field(min_length=1, max_length=200, description="Who to greet.")
    greeting: str = Field(default="Hello", min_length=1, max_length=50)
    wait_seconds: float = Field(
        default=0, ge=0, le=86_400, description="A durable timer before the greeting (survives restarts)."
    )


HELLO = EventType(name="hello", version=1, schema=HelloRequested)
