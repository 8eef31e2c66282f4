"""Activities of the scheduled maintenance jobs: deleting expired videos' files, repairing run records."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from longhaul.config import Settings
from longhaul.db import utcnow
from longhaul.models import RunStatus, RunUpdate
from longhaul.storage import RunStore
from longhaul.video_store import VideoRef, VideoStore


class ExpiredRequest(BaseModel):
    cutoff: datetime
    after: VideoRef | None
    limit: int


class Archived(BaseModel):
    tenant: str
    video_id: str
    deleted_files: int
    bytes_freed: int


class ReconcileRequest(BaseModel):
    grace_seconds: float
    limit: int = 500


class Repair(BaseModel):
    run_id: str
    workflow_id: str
    was: RunStatus
    now: RunStatus
    reason: str


class ReconcileReport(BaseModel):
    checked: int
    repaired: list[Repair] = Field(default_factory=list)


# What a closed Temporal execution means for a run record that still says queued/running.
_CLOSED = {
    WorkflowExecutionStatus.COMPLETED: RunStatus.COMPLETED,
    WorkflowExecutionStatus.FAILED: RunStatus.FAILED,
    WorkflowExecutionStatus.CANCELED: RunStatus.CANCELLED,
    WorkflowExecutionStatus.TERMINATED: RunStatus.FAILED,
    WorkflowExecutionStatus.TIMED_OUT: RunStatus.TIMED_OUT,
}


class MaintenanceActivities:
    def __init__(self, settings: Settings, runs: RunStore, videos: VideoStore, client: Client) -> None:
        self.settings = settings
        self.runs = runs
        self.videos = videos
        self.client = client

    @activity.defn(name="cleanup.expired")
    async def expired(self, request: ExpiredRequest) -> list[VideoRef]:
        return await self.videos.expired(request.cutoff, request.after, request.limit)

    @activity.defn(name="cleanup.archive")
    async def archive(self, video: VideoRef) -> Archived:
        """Delete the video's renditions and thumbnails, then mark it archived. A file already gone counts
        as deleted, so a retry (or a second run) finishes what the first began."""
        root = self.settings.media_root / video.tenant
        deleted, freed = await asyncio.to_thread(_delete, root, video.files)
        await self.videos.mark_archived(video.tenant, video.video_id)
        return Archived(
            tenant=video.tenant, video_id=video.video_id, deleted_files=deleted, bytes_freed=freed
        )

    @activity.defn(name="runs.reconcile")
    async def reconcile(self, request: ReconcileRequest) -> ReconcileReport:
        """Find run records stuck in queued/running and set them to what Temporal says happened."""
        stuck = await self.runs.stuck(utcnow() - timedelta(seconds=request.grace_seconds), request.limit)
        report = ReconcileReport(checked=len(stuck))
        for run in stuck:
            repair = await self._repair_of(run.id, run.workflow_id, run.status)
            if repair is None:
                continue
            change = RunUpdate(
                run_id=run.id,
                status=repair.now,
                stage=repair.now,
                error=None if repair.now == RunStatus.COMPLETED else repair.reason,
                log=f"reconciled: {repair.reason}",
            )
            if await self.runs.apply(change, op_id=f"reconcile/{activity.info().workflow_run_id}"):
                report.repaired.append(repair)
            activity.heartbeat(run.id)
        return report

    async def _repair_of(self, run_id: str, workflow_id: str, was: RunStatus) -> Repair | None:
        try:
            description = await self.client.get_workflow_handle(workflow_id).describe()
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            return Repair(
                run_id=run_id, workflow_id=workflow_id, was=was, now=RunStatus.FAILED,
                reason="its workflow does not exist in Temporal (never started, or deleted by retention)",
            )  # fmt: skip
        status = description.status
        if status is None or status not in _CLOSED:
            return None  # still running (or continued as new): nothing to repair
        return Repair(
            run_id=run_id, workflow_id=workflow_id, was=was, now=_CLOSED[status],
            reason=f"its workflow is {status.name.lower()} in Temporal",
        )  # fmt: skip


def _delete(root: Path, files: list[str]) -> tuple[int, int]:
    deleted = freed = 0
    for relative in files:
        path = (root / relative).resolve()
        if not path.is_relative_to(root.resolve()):
            continue  # a record pointing outside the tenant's media dir is never followed
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            continue
        deleted += 1
        freed += size
    return deleted, freed
