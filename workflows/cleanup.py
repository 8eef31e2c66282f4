"""The cleanup pipeline: every night, the files of videos past their retention are deleted, in batches.

The nightly run finds the tenants with videos past retention and starts one child run per tenant
(``trigger_and_wait``, through the run queue): at most two tenants at once (the ``cleanup-tenant-videos``
queue's concurrency, which ``longhaul queues limit`` changes at run time), each tenant's run in batches
with a durable wait between them, one tenant's failure reported without stopping the others. A tenant
may also ask for its own cleanup: the event ``cleanup.tenant-due`` (its ``owner`` must be the sender).
Nightly runs begun before the fan-out (one run over every tenant's videos) go on as they were: the change
is behind the patch :data:`PER_TENANT`."""

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

from longhaul.sdk import (
    Concurrency,
    EventPayload,
    EventType,
    Pipeline,
    ScheduleDecl,
    Subscription,
    TaskQueue,
    batch_trigger_and_wait,
    defn,
    log,
    progress,
    reason_of,
    tracked,
)

CALL = timedelta(minutes=2)
ARCHIVE_RETRY = RetryPolicy(maximum_attempts=3)  # then reported; the next run tries again
PER_TENANT = "cleanup.per-tenant"  # the nightly run fans out one child run per tenant


class CleanupReport(BaseModel):
    found: int = 0
    archived: int = 0
    deleted_files: int = 0
    bytes_freed: int = 0
    batches: int = 0
    failures: list[str] = Field(default_factory=list)
    tenants: int = 0  # tenants cleaned (one child run each)

    def add(self, other: CleanupReport) -> None:
        """Count in one tenant's report."""
        self.found += other.found
        self.archived += other.archived
        self.deleted_files += other.deleted_files
        self.bytes_freed += other.bytes_freed
        self.batches += other.batches
        self.failures += other.failures
        self.tenants += 1


class TenantCleanup(EventPayload):
    """``cleanup.tenant-due``: delete the files of ``owner``'s videos processed before ``cutoff`` (default:
    the retention before now), ``batch_size`` at a time with ``wait_seconds`` between batches; the run
    continues as new every ``batches_per_run`` batches, carrying ``after`` and ``report``."""

    tenant_field = "owner"  # a tenant may ask for its own cleanup, not another's

    owner: str = Field(min_length=1, max_length=64)
    cutoff: datetime | None = None
    retention_days: float = Field(default=30, gt=0)
    batch_size: int = Field(default=10, ge=1, le=1000)
    wait_seconds: float = Field(default=60, ge=0, le=86_400)
    batches_per_run: int = Field(default=20, ge=1, le=1000)
    # Carried through continue-as-new:
    after: VideoRef | None = None
    report: CleanupReport = Field(default_factory=CleanupReport)


CLEANUP_TENANT = EventType("cleanup.tenant-due", 1, TenantCleanup)


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
    """The nightly cleanup: a child run per tenant with videos past the retention (``cleanup-tenant-videos``,
    through the run queue), their reports summed, a tenant whose run failed named in ``failures``."""

    @workflow.run
    async def run(self, job: CleanupInput) -> CleanupReport:
        return await tracked(self._clean(job))

    async def _clean(self, job: CleanupInput) -> CleanupReport:
        cutoff = job.cutoff or workflow.now() - timedelta(days=job.retention_days)
        if job.after is None and workflow.patched(PER_TENANT):
            return await self._per_tenant(job, cutoff)
        # A chain of runs begun before the fan-out: every tenant's videos, in this run and its successors.
        report, after, done = await _batches(job, cutoff, None)
        if done:
            return report
        await log(f"continuing as new after {report.batches} batches")
        workflow.continue_as_new(job.model_copy(update={"cutoff": cutoff, "after": after, "report": report}))

    async def _per_tenant(self, job: CleanupInput, cutoff: datetime) -> CleanupReport:
        tenants = await workflow.execute_activity_method(
            CleanupActivities.tenants_due, cutoff, start_to_close_timeout=CALL, summary="find tenants due"
        )
        report = CleanupReport()
        if not tenants:
            return report
        await progress(5, f"cleaning {len(tenants)} tenant(s): {', '.join(tenants)}")
        asks = [
            TenantCleanup(
                owner=tenant, cutoff=cutoff, batch_size=job.batch_size, wait_seconds=job.wait_seconds,
                batches_per_run=job.batches_per_run,
            )
            for tenant in tenants
        ]  # fmt: skip
        for tenant, result in zip(
            tenants, await batch_trigger_and_wait(TenantCleanupWorkflow.run, asks), strict=True
        ):
            if result.ok and result.output is not None:
                report.add(result.output)
            else:
                report.failures.append(
                    f"{tenant}: its cleanup run {result.run.run_id} {result.run.status}: {result.run.error}"
                )
        return report


@defn(name="cleanup-tenant-videos")
class TenantCleanupWorkflow:
    """Deletes the files of one tenant's videos past the retention, in batches with a durable wait between
    them; continues as new every ``batches_per_run`` batches, carrying its place and its counts."""

    @workflow.run
    async def run(self, job: TenantCleanup) -> CleanupReport:
        return await tracked(self._clean(job))

    async def _clean(self, job: TenantCleanup) -> CleanupReport:
        cutoff = job.cutoff or workflow.now() - timedelta(days=job.retention_days)
        report, after, done = await _batches(job, cutoff, job.owner)
        if done:
            return report
        await log(f"continuing as new after {report.batches} batches")
        workflow.continue_as_new(job.model_copy(update={"cutoff": cutoff, "after": after, "report": report}))


async def _batches(
    job: CleanupInput | TenantCleanup, cutoff: datetime, owner: str | None
) -> tuple[CleanupReport, VideoRef | None, bool]:
    """Up to ``job.batches_per_run`` batches of the videos past ``cutoff`` (``owner``'s, or every tenant's)
    from ``job``'s place on: the report, the place reached, and whether none is left."""
    report, after = job.report, job.after
    for _ in range(job.batches_per_run):
        batch = await workflow.execute_activity_method(
            CleanupActivities.expired,
            ExpiredRequest(cutoff=cutoff, after=after, limit=job.batch_size, tenant=owner),
            start_to_close_timeout=CALL,
            summary="find expired videos",
        )
        if not batch:
            return report, after, True
        if report.batches:
            await workflow.sleep(timedelta(seconds=job.wait_seconds), summary="spare the storage")
        await progress(min(95, 5 + report.batches), f"batch {report.batches + 1}: {len(batch)} videos")
        for video, outcome in zip(batch, await _archive(batch), strict=True):
            if isinstance(outcome, Archived):
                report.archived += 1
                report.deleted_files += outcome.deleted_files
                report.bytes_freed += outcome.bytes_freed
            else:
                report.failures.append(f"{video.tenant}/{video.video_id}: {outcome}")
        report.found += len(batch)
        report.batches += 1
        after = batch[-1]
    return report, after, False


async def _archive(batch: list[VideoRef]) -> list[Archived | str]:
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
    entries=(
        # At most two tenants' cleanups at once, to spare the storage; their runs wait in the queue.
        Subscription(CLEANUP_TENANT, TenantCleanupWorkflow, key="owner", concurrency=(Concurrency(2),)),
    ),
    workflows=(CleanupWorkflow,),
    queues=(TaskQueue(cleanup_activities),),
    schedules=_schedules,
    settings=CleanupSettings,
)
