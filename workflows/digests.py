"""The video digest: a user who uploads several videos gets one "your videos are ready" message for those
that finish within a few seconds of each other, not one each. It is a batched subscription (the run
queue collects ``video.processing.completed`` per user, docs/events.md), so the workflow receives the list."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.digests import Digest, DigestActivities, DigestRequest, VideoDigestRow, digest_activities
    from activities.video.models import VIDEO_COMPLETED, VideoProcessingCompleted

from longhaul.sdk import (
    Batch,
    Pipeline,
    Subscription,
    TaskQueue,
    current_run_id,
    current_tenant,
    defn,
    progress,
    tracked,
)

DIGEST_SIZE = 20  # videos per digest at most
DIGEST_WINDOW = timedelta(seconds=10)  # how long a digest waits for more after its first video


class VideoDigestBatch(BaseModel):
    """What the run queue hands the workflow: the batched events, oldest first, and their ids."""

    events: list[VideoProcessingCompleted]
    event_ids: list[str]


@defn(name="video-digest")
class VideoDigestWorkflow:
    @workflow.run
    async def run(self, batch: VideoDigestBatch) -> Digest:
        return await tracked(self._digest(batch))

    async def _digest(self, batch: VideoDigestBatch) -> Digest:
        await progress(50, f"writing the digest of {len(batch.events)} video(s)")
        return await workflow.execute_activity_method(
            DigestActivities.record,
            DigestRequest(
                tenant=current_tenant(),
                run_id=current_run_id(),
                user_id=batch.events[0].user_id,
                video_ids=[event.video_id for event in batch.events],
                seconds=sum(event.duration for event in batch.events),
            ),
            start_to_close_timeout=timedelta(seconds=30),
            summary="record digest",
        )


DIGESTS = Pipeline(
    name="digests",
    entries=(
        Subscription(
            VIDEO_COMPLETED,
            VideoDigestWorkflow,
            key="user_id",
            batch=Batch(DIGEST_SIZE, DIGEST_WINDOW, key="user_id"),
        ),
    ),
    queues=(TaskQueue(digest_activities),),
    tables=(VideoDigestRow,),
    short_steps=(DigestActivities.record,),  # one insert, keyed by the run
)
