"""What an event is: a name, a version and a pydantic model of its payload.

Each pipeline declares its own events beside its models (e.g. ``activities/orders/models.py``), so the API
(validation), the workflows (typed input) and the clients all use the same model; which workflows an event
starts is declared by the pipeline (:mod:`workflows.pipeline`) and collected by :mod:`workflows.catalog`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict


class EventPayload(BaseModel):
    """Base of every event payload: unknown fields are refused, so a typo is an error, not silently lost."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class EventType:
    """An event longhaul accepts: ``name`` on the wire, ``version`` of its schema, ``schema`` its payload."""

    name: str
    version: int
    schema: type[EventPayload]
