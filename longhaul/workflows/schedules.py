"""Schedules declared in code by their pipelines (Trigger.dev's ``intervalTrigger``/cron jobs).

``longhaul schedules sync`` (and ``longhaul dev`` at start) makes the server's schedules match what the
catalog's pipelines declare (:meth:`longhaul.workflows.catalog.Catalog.schedules`). Inputs are built from the
settings there, so workflows never read configuration.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from pydantic import BaseModel
from temporalio.client import ScheduleOverlapPolicy

from longhaul.workflows import registry


@dataclass(frozen=True)
class ScheduleDecl:
    """One schedule: ``cron`` or ``every``; overlap SKIP means a run never starts while one is running."""

    id: str
    workflow: type
    input: BaseModel
    cron: str | None = None
    every: timedelta | None = None
    timezone: str = "UTC"
    overlap: ScheduleOverlapPolicy = ScheduleOverlapPolicy.SKIP
    catchup_window: timedelta = timedelta(hours=1)
    jitter: timedelta = timedelta(0)
    paused: bool = False
    note: str = ""

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.every is None):
            raise ValueError(f"schedule {self.id}: give exactly one of cron and every")

    @property
    def workflow_name(self) -> str:
        return registry.declared(self.workflow).name

    def fingerprint(self) -> str:
        """Changes whenever anything declared changes; the server keeps it to tell what is out of date."""
        declared = {
            "runs_as": "system",  # schedules' runs moved from the tenant "default": existing ones update
            "workflow": self.workflow_name,
            "input": self.input.model_dump(mode="json"),
            "cron": self.cron,
            "every": self.every.total_seconds() if self.every else None,
            "timezone": self.timezone,
            "overlap": self.overlap.name,
            "catchup": self.catchup_window.total_seconds(),
            "jitter": self.jitter.total_seconds(),
            "paused": self.paused,
            "note": self.note,
        }
        return hashlib.sha256(json.dumps(declared, sort_keys=True).encode()).hexdigest()[:16]
