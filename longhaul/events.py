"""What an event is: a name, a version and a pydantic model of its payload.

Each pipeline declares its own events beside its models (e.g. ``activities/orders/models.py``), so the API
(validation), the workflows (typed input) and the clients all use the same model; which workflows an event
starts is declared by the pipeline (:mod:`longhaul.workflows.pipeline`) and collected by
:mod:`longhaul.workflows.catalog`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class EventPayload(BaseModel):
    """Base of every event payload: unknown fields are refused, so a typo is an error, not silently lost.

    ``tenant_field`` names a field that must hold the sender's tenant (a payload that carries its tenant,
    e.g. a ticket forwarded by an integration): the API refuses one naming another tenant (422 naming
    the field) before anything is recorded."""

    model_config = ConfigDict(extra="forbid")
    tenant_field: ClassVar[str | None] = None


@dataclass(frozen=True)
class EventType:
    """An event longhaul accepts: ``name`` on the wire, ``version`` of its schema, ``schema`` its payload."""

    name: str
    version: int
    schema: type[EventPayload]
