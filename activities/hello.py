"""Activity of the ``hello`` pipeline."""

from __future__ import annotations

from temporalio import activity

from longhaul.events import HelloRequested


@activity.defn(name="compose_greeting")
async def compose_greeting(event: HelloRequested) -> str:
    """Compose the greeting. Pure, hence trivially idempotent."""
    message = f"{event.greeting}, {event.name}!"
    activity.logger.info("composed greeting %r", message)
    return message
