"""The video pipeline: probe → parallel transcodes → parallel thumbnails → analysis → record → announce.

It may run for hours on long inputs: no timeout here is shorter than its step (FFmpeg steps are bounded by
heartbeats, not by a guess at their length, and their start-to-close grows with the video's duration),
and the history holds a fixed number of events whatever the length (FFmpeg progress travels in
heartbeats and run-record writes, not in workflow events).
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.video.models import (
        RENDITIONS,
        THUMBNAILS,
        VIDEO_COMPLETED,
        VIDEO_FAILED,
        VIDEO_UPLOADED,
        AnalysisRequest,
        ProbeRequest,
        Rendition,
        Thumbnail,
        ThumbnailRequest,
        TranscodeRequest,
        VideoAnalysis,
        VideoInfo,
        VideoRecord,
        VideoResult,
        VideoUploaded,
    )
    from activities.video.processing import (
        INVALID_VIDEO,
        VideoActivities,
        media_activities,
        recording_activities,
    )
    from activities.video.settings import VideoSettings
    from activities.video.store import VideoRow

from longhaul.sdk import (
    Concurrency,
    Pipeline,
    Subscription,
    TaskQueue,
    all_of,
    current_run_id,
    current_tenant,
    defn,
    emit,
    is_cancellation,
    metadata,
    progress,
    reason_of,
    task_queue,
    tracked,
)

MEDIA = "media"  # the task queue of FFmpeg jobs: CPU-bound, so they never starve other pipelines

HEARTBEAT = timedelta(seconds=15)  # a dead worker's FFmpeg job is retried elsewhere after this
FFMPEG_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=5,
    non_retryable_error_types=[INVALID_VIDEO],
)
SHORT = timedelta(minutes=2)
REPORT_RENDITIONS = "report-renditions"  # workflow.patched: runs started before it keep their history


def _ffmpeg_timeout(duration: float) -> timedelta:
    """Start-to-close of one FFmpeg job: generous and proportional; liveness is the heartbeat's job."""
    return timedelta(minutes=30) + timedelta(seconds=duration * 20)


@defn(name="video-processing")
class VideoProcessingWorkflow:
    @workflow.run
    async def run(self, event: VideoUploaded) -> VideoResult:
        return await tracked(self._process(event))

    async def _process(self, event: VideoUploaded) -> VideoResult:
        try:
            return await self._steps(event)
        except FailureError as error:
            if not is_cancellation(error):
                await emit(VIDEO_FAILED.name, {**_ids(event), "reason": reason_of(error)}, outcome="failed")
            raise

    async def _steps(self, event: VideoUploaded) -> VideoResult:
        await progress(2, "probing")
        info = await self._probe(event)
        planned = [(name, height) for name, height in RENDITIONS if height <= info.height]
        skipped = [name for name, height in RENDITIONS if height > info.height]
        names = ", ".join(name for name, _ in planned) or "nothing"
        note = f" (skipped {', '.join(skipped)}: above the {info.height}p source)" if skipped else ""
        await progress(10, f"transcoding {names}{note}")
        # Each rendition's state in the run's metadata (runs started before it was reported replay without).
        report = workflow.patched(REPORT_RENDITIONS)
        if report:
            states = {name: "transcoding" for name, _ in planned} | {name: "skipped" for name in skipped}
            metadata.set("renditions", {name: {"status": status} for name, status in states.items()})
        renditions = await all_of(
            *(self._transcoded(event, info, name, height, report=report) for name, height in planned)
        )
        await progress(70, f"{THUMBNAILS} thumbnails")
        thumbnails = await all_of(*(self._thumbnail(event, info, index) for index in range(THUMBNAILS)))
        await progress(80, "analysing scenes, loudness, black and silent stretches")
        analysis = await self._analyse(event, info)
        result = VideoResult(
            video_id=event.video_id,
            user_id=event.user_id,
            source=_public(info),
            renditions=list(renditions),
            skipped=skipped,
            thumbnails=list(thumbnails),
            analysis=analysis,
        )
        await progress(90, "recording")
        await workflow.execute_activity_method(
            VideoActivities.record,
            VideoRecord(tenant=current_tenant(), run_id=current_run_id(), result=result),
            start_to_close_timeout=SHORT,
            summary="record video",
        )
        await progress(95, "announcing completion")
        completed = {
            **_ids(event),
            "duration": info.duration,
            **result.model_dump(mode="json", include={"renditions", "skipped", "thumbnails", "analysis"}),
        }
        await emit(VIDEO_COMPLETED.name, completed, outcome="completed")
        return result

    async def _probe(self, event: VideoUploaded) -> VideoInfo:
        """What the source is; a file FFmpeg cannot read fails the run at once (no retry helps)."""
        try:
            return await workflow.execute_activity_method(
                VideoActivities.probe,
                ProbeRequest(
                    tenant=current_tenant(),
                    video_id=event.video_id,
                    file_path=event.file_path,
                    format=event.format,
                ),
                task_queue=task_queue(MEDIA),
                start_to_close_timeout=timedelta(hours=2),  # a download may be large; heartbeats keep watch
                heartbeat_timeout=HEARTBEAT,
                retry_policy=FFMPEG_RETRY,
                summary=f"probe {event.file_path}",
            )
        except ActivityError as error:
            if isinstance(error.cause, ApplicationError) and error.cause.type == INVALID_VIDEO:
                raise ApplicationError(error.cause.message, type=INVALID_VIDEO, non_retryable=True) from error
            raise

    async def _transcoded(
        self, event: VideoUploaded, info: VideoInfo, name: str, height: int, *, report: bool
    ) -> Rendition:
        rendition = await self._transcode(event, info, name, height)
        if report:
            done = {"status": "done", "size_bytes": rendition.size_bytes, "width": rendition.width}
            metadata.set("renditions", {**metadata.get("renditions", {}), name: done})
        return rendition

    def _transcode(
        self, event: VideoUploaded, info: VideoInfo, name: str, height: int
    ) -> Awaitable[Rendition]:
        return workflow.execute_activity_method(
            VideoActivities.transcode,
            TranscodeRequest(
                tenant=current_tenant(),
                video_id=event.video_id,
                source=info.path,
                rendition=name,
                height=height,
                source_duration=info.duration,
                has_audio=info.audio_codec is not None,
            ),
            task_queue=task_queue(MEDIA),
            start_to_close_timeout=_ffmpeg_timeout(info.duration),
            heartbeat_timeout=HEARTBEAT,
            retry_policy=FFMPEG_RETRY,
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=f"transcode {name}",
        )

    def _thumbnail(self, event: VideoUploaded, info: VideoInfo, index: int) -> Awaitable[Thumbnail]:
        return workflow.execute_activity_method(
            VideoActivities.thumbnail,
            ThumbnailRequest(
                tenant=current_tenant(),
                video_id=event.video_id,
                source=info.path,
                index=index,
                timestamp=round(info.duration * (index + 0.5) / THUMBNAILS, 3),
            ),
            task_queue=task_queue(MEDIA),
            start_to_close_timeout=SHORT,
            retry_policy=FFMPEG_RETRY,
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=f"thumbnail {index + 1} of {THUMBNAILS}",
        )

    async def _analyse(self, event: VideoUploaded, info: VideoInfo) -> VideoAnalysis:
        return await workflow.execute_activity_method(
            VideoActivities.analyze,
            AnalysisRequest(
                tenant=current_tenant(),
                video_id=event.video_id,
                source=info.path,
                duration=info.duration,
                has_audio=info.audio_codec is not None,
            ),
            task_queue=task_queue(MEDIA),
            start_to_close_timeout=_ffmpeg_timeout(info.duration),
            heartbeat_timeout=HEARTBEAT,
            retry_policy=FFMPEG_RETRY,
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary="analyse",
        )


def _ids(event: VideoUploaded) -> dict[str, object]:
    return {"video_id": event.video_id, "user_id": event.user_id}


def _public(info: VideoInfo) -> VideoInfo:
    """The source as others may see it: its name, not where the worker keeps it."""
    return info.model_copy(update={"path": info.path.rsplit("/", 1)[-1]})


VIDEOS_PER_TENANT = 4

VIDEO = Pipeline(
    name="video",
    entries=(
        Subscription(
            VIDEO_UPLOADED,
            VideoProcessingWorkflow,
            key="video_id",
            once_per_key=True,
            # One user's uploads are processed one at a time, and a tenant's at most four at once: a bulk
            # upload neither floods the media workers nor holds up everyone else's videos.
            concurrency=(Concurrency(1, key="user_id"), Concurrency(VIDEOS_PER_TENANT, key="tenant")),
        ),
    ),
    published=(VIDEO_COMPLETED, VIDEO_FAILED),
    queues=(
        TaskQueue(recording_activities),
        TaskQueue(
            media_activities,
            role=MEDIA,
            concurrency=lambda settings: VideoSettings.of(settings).max_concurrent_transcodes,
            # FFmpeg jobs heartbeat at least this often, so a cancellation reaches them within a second.
            heartbeat_throttle=timedelta(seconds=1),
        ),
    ),
    tables=(VideoRow,),
    settings=VideoSettings,
    short_steps=(VideoActivities.record,),  # one upsert of the video's row; FFmpeg's jobs stay activities
)
