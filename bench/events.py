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


class ChunksRequested(EventPayload):
    """Payload of ``bench.stream``: ``count`` chunks of ``size`` characters to the stream ``chunks``, by
    ``append`` (one write each) or ``pipe`` (batched); ``interval`` seconds apart (0: as fast as it can),
    each carrying its wall-clock time of writing (for the latency to a reader)."""

    count: int = Field(ge=1, le=1_000_000)
    size: int = Field(default=100, ge=20, le=65_536)
    mode: str = Field(default="append", pattern="^(append|pipe)$")
    interval: float = Field(default=0, ge=0, le=10)


STREAM = EventType("bench.stream", 1, ChunksRequested)
