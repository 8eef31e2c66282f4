"""The ``hello`` pipeline's event and activity."""

from __future__ import annotations

from pydantic import Field
from temporalio import activity

from longhaul.sdk import EventPayload, EventType


class HelloRequested(EventPayload):
    """Payload of ``hello``: the smallest real pipeline, proving API → Temporal → worker → run record."""

    name: str = Field(min_length=1, max_length=200, description="Who to greet.")
    greeting: str = Field(default="Hello", min_length=1, max_length=50)
    wait_seconds: float = Field(
        default=0, ge=0, le=86_400, description="A durable timer before the greeting (survives restarts)."
    )


HELLO = EventType(name="hello", version=1, schema=HelloRequested)


@activity.defn(name="compose_greeting")
async def compose_greeting(event: HelloRequested) -> str:
    """Compose the greeting. Pure, hence trivially idempotent."""
    message = f"{event.greeting}, {event.name}!"
    activity.logger.info("composed greeting %r", message)
    return message
