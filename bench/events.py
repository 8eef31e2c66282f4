"""The benchmark pipelines' event schemas.

Kept apart from the workflows and imported passed through the sandbox: a pydantic model defined in a
workflow module is rebuilt for every workflow instance the sandbox creates.
"""

from __future__ import annotations

from pydantic import Field

from longhaul.events import EventPayload, EventType


class StepsRequested(EventPayload):
    """Payload of ``bench.steps``: what the three steps work on."""

    item: str = Field(min_length=1, max_length=100)


class SleepRequested(EventPayload):
    """Payload of ``bench.sleep``: how long the durable timer runs."""

    seconds: float = Field(gt=0, le=86_400)


STEPS = EventType("bench.steps", 1, StepsRequested)
SHORT_STEPS = EventType("bench.short-steps", 1, StepsRequested)
SLEEP = EventType("bench.sleep", 1, SleepRequested)
FAIR = EventType("bench.fair", 1, SleepRequested)  # tenants take turns
UNFAIR = EventType("bench.unfair", 1, SleepRequested)  # priority, then arrival
