"""The cleanup pipeline: every night, the files of videos past their retention are deleted, in batches."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from activities.cleanup import (
        Archived,
        CleanupActivities,
        CleanupSettings,
        ExpiredRequest,
        cleanup_activities,
    )
    from activities.video.store import VideoRef
    from longhaul.sdk import Settings

from longhaul.sdk import Pipeline, ScheduleDecl, TaskQueue, defn, log, progress, reason_of, tracked

CALL = timedelta(minutes=2)
ARCHIVE_RETRY = RetryPolicy(maximum_attempts=3)  # then reported; the next run tries again


class CleanupReport(BaseModel):
    found: int = 0
    archived: int = 0
    deleted_files: int = 0
    bytes_freed: int = 0
    batches: int = 0
    failures: list[str] = Field(default_factory=list)


class CleanupInput(BaseModel):
    """Settings come in with the input (from the schedule): workflows read no configuration themselves."""

    retention_days: float = 30
    batch_size: int = 10
    wait_seconds: float = 60
    batches_per_run: int = 20
    # Carried through continue-as-new:
    cutoff: datetime | None = None
    after: VideoRef | None = None
    report: CleanupReport = Field(default_factory=CleanupReport)


@defn(name="cleanup-old-videos")
class CleanupWorkflow:
    """Deletes the files of videos older than the retention, in batches with a durable wait between them;
    continues as new every ``batches_per_run`` batches, carrying its place and its counts."""

    @workflow.run
    async def run(self, job: CleanupInput) -> CleanupReport:
        return await tracked(self._clean(job))

    async def _clean(self, job: CleanupInput) -> CleanupReport:
        cutoff = job.cutoff or workflow.now() - timedelta(days=job.retention_days)
        report, after = job.report, job.after
        for _ in range(job.batches_per_run):
            batch = await workflow.execute_activity_method(
                CleanupActivities.expired,
                ExpiredRequest(cutoff=cutoff, after=after, limit=job.batch_size),
                start_to_close_timeout=CALL,
                summary="find expired videos",
            )
            if not batch:
                return report
            if report.batches:
                await workflow.sleep(timedelta(seconds=job.wait_seconds), summary="spare the storage")
            await progress(min(95, 5 + report.batches), f"batch {report.batches + 1}: {len(batch)} videos")
            for video, outcome in zip(batch, await self._archive(batch), strict=True):
                if isinstance(outcome, Archived):
                    report.archived += 1
                    report.deleted_files += outcome.deleted_files
                    report.bytes_freed += outcome.bytes_freed
                else:
                    report.failures.append(f"{video.tenant}/{video.video_id}: {outcome}")
            report.found += len(batch)
            report.batches += 1
            after = batch[-1]
        await log(f"continuing as new after {report.batches} batches")
        workflow.continue_as_new(job.model_copy(update={"cutoff": cutoff, "after": after, "report": report}))

    async def _archive(self, batch: list[VideoRef]) -> list[Archived | str]:
        """Archive a batch in parallel; one video's failure is reported, not fatal to the others."""

        async def one(video: VideoRef) -> Archived | str:
            try:
                return await workflow.execute_activity_method(
                    CleanupActivities.archive,
                    video,
                    start_to_close_timeout=CALL,
                    retry_policy=ARCHIVE_RETRY,
                    summary=f"archive {video.video_id}",
                )
            except FailureError as error:
                return reason_of(error)

        return list(await asyncio.gather(*(one(video) for video in batch)))


def _schedules(settings: Settings) -> list[ScheduleDecl]:
    cleanup = CleanupSettings.of(settings)
    return [
        ScheduleDecl(
            id="cleanup-old-videos",
            workflow=CleanupWorkflow,
            input=CleanupInput(
                retention_days=cleanup.retention_days,
                batch_size=cleanup.batch_size,
                wait_seconds=cleanup.batch_wait,
                batches_per_run=cleanup.batches_per_run,
            ),
            cron=cleanup.cron,
            note="deletes renditions and thumbnails of videos past their retention",
        )
    ]


CLEANUP = Pipeline(
    name="cleanup",
    workflows=(CleanupWorkflow,),
    queues=(TaskQueue(cleanup_activities),),
    schedules=_schedules,
    settings=CleanupSettings,
)
