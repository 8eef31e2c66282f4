"""Schedules declared in code, next to their workflows (Trigger.dev's ``intervalTrigger``/cron jobs).

``longhaul schedules sync`` (and ``longhaul dev`` at start) makes the server's schedules match
:func:`declared`. Inputs are built from the settings here, so workflows never read configuration.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from pydantic import BaseModel
from temporalio.client import ScheduleOverlapPolicy

from longhaul.config import Settings
from workflows.catalog import workflow_name
from workflows.maintenance import CleanupInput, CleanupWorkflow, ReconcileInput, ReconcileWorkflow

SCHEDULED_WORKFLOWS: tuple[type, ...] = (CleanupWorkflow, ReconcileWorkflow)


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
        return workflow_name(self.workflow)

    def fingerprint(self) -> str:
        """Changes whenever anything declared changes; the server keeps it to tell what is out of date."""
        declared = {
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


def declared(settings: Settings) -> list[ScheduleDecl]:
    """The schedules longhaul runs."""
    return [
        ScheduleDecl(
            id="cleanup-old-videos",
            workflow=CleanupWorkflow,
            input=CleanupInput(
                retention_days=settings.video_retention_days,
                batch_size=settings.cleanup_batch_size,
                wait_seconds=settings.cleanup_batch_wait,
                batches_per_run=settings.cleanup_batches_per_run,
            ),
            cron=settings.cleanup_cron,
            note="deletes renditions and thumbnails of videos past their retention",
        ),
        ScheduleDecl(
            id="reconcile-runs",
            workflow=ReconcileWorkflow,
            input=ReconcileInput(grace_seconds=settings.reconcile_grace_seconds),
            every=timedelta(minutes=settings.reconcile_every_minutes),
            note="repairs run records whose workflow closed or never started",
        ),
    ]
