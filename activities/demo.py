"""The ``demo`` pipeline's events: one payload, sent under a name per flow-control rule, so each rule of
the run queue can be tried from the command line (docs/events.md, "Try each rule")."""

from __future__ import annotations

from pydantic import Field

from longhaul.sdk import EventPayload, EventType


class DemoWork(EventPayload):
    """Some work of a ``key`` (a document, a user): the rules count per key."""

    key: str = Field(min_length=1, max_length=100, description="What the rules count by.")
    note: str = Field(
        default="", max_length=200, description="Shown in the output: which event made the run."
    )
    seconds: float = Field(default=10, ge=0, le=3600, description="How long the run works (a durable timer).")


DEMO_DEBOUNCE = EventType(name="demo.debounce", version=1, schema=DemoWork)
DEMO_SINGLETON = EventType(name="demo.singleton", version=1, schema=DemoWork)
DEMO_THROTTLE = EventType(name="demo.throttle", version=1, schema=DemoWork)
DEMO_RATE_LIMIT = EventType(name="demo.rate-limit", version=1, schema=DemoWork)
DEMO_CONCURRENCY = EventType(name="demo.concurrency", version=1, schema=DemoWork)
