"""The activity behind run-record updates (status, progress, stage, output) sent from workflows."""

from __future__ import annotations

from temporalio import activity

from longhaul.models import RunUpdate
from longhaul.storage import RunStore


class RunActivities:
    """Activities that need app storage; the worker creates one instance with its store."""

    def __init__(self, store: RunStore) -> None:
        self.store = store

    @activity.defn(name="update_run")
    async def update_run(self, change: RunUpdate) -> None:
        """Apply ``change`` to the run record. Idempotent: applying the same update twice is harmless,
        and a run that reached a final status is never moved back."""
        info = activity.info()
        changed = await self.store.apply(change, op_id=f"{info.workflow_run_id}/{info.activity_id}")
        if not changed:
            activity.logger.info("run %s already final or missing; update skipped", change.run_id)
