"""One 720p transcode through the workflow against the same FFmpeg command run directly.

"Through the workflow" is the product's ``video.transcode`` activity started by a workflow on the
embedded server: task dispatch, FFmpeg progress parsing, heartbeats, the atomic rename and the probe that
verifies the output. The ratio (direct / workflow) says what that machinery costs; the goal is ≥ 0.95.
"""

from __future__ import annotations

import tempfile
import uuid
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel
from temporalio import workflow
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from activities.video.ffmpeg import make_sample, probe, run_ffmpeg
    from activities.video.models import Rendition, TranscodeRequest
    from activities.video.processing import VideoActivities, transcode_args
    from activities.video.settings import VideoSettings
    from bench.harness import Comparison, embedded_server, timed

from longhaul.workflows import registry

GOAL = 0.95


class Job(BaseModel):
    request: TranscodeRequest
    media_queue: str


@registry.defn(name="bench-transcode")
class TranscodeOnce:
    @workflow.run
    async def run(self, job: Job) -> Rendition:
        return await workflow.execute_activity_method(
            VideoActivities.transcode,
            job.request,
            task_queue=job.media_queue,
            start_to_close_timeout=timedelta(hours=1),
            heartbeat_timeout=timedelta(seconds=15),
        )


async def run(repeats: int, seconds: float) -> Comparison:
    from longhaul.config import Settings
    from longhaul.db import Database
    from longhaul.migrations import upgrade
    from longhaul.server.worker import build_worker
    from longhaul.storage import RunStore
    from workflows.video import MEDIA

    with tempfile.TemporaryDirectory(prefix="bench-transcode-") as tmp:
        root = Path(tmp)
        settings = Settings(data_dir=root / "data", task_queue="bench")
        source = make_sample(root / "source.mp4", width=1920, height=1080, seconds=seconds, quiet=(1, 2))
        info = probe(source)
        request = TranscodeRequest(
            tenant="bench", video_id="v", source=str(source), rendition="720p", height=720,
            source_duration=info.duration, has_audio=info.audio_codec is not None,
        )  # fmt: skip
        target = settings.media_root / "bench" / "v" / "720p.mp4"
        direct_out = root / "direct-720p.mp4"
        comparison = Comparison("transcode", baseline="direct ffmpeg")
        comparison.notes.update(source=f"1920x1080 {seconds:g}s sample", rendition="720p", goal=GOAL)

        db = Database(settings.app_database_url)
        await upgrade(db)
        async with embedded_server(root) as env:
            client = env.client
            bench_worker = Worker(
                client, task_queue=settings.task_queue + "-bench", workflows=[TranscodeOnce]
            )
            async with build_worker(client, RunStore(db), settings), bench_worker:

                async def direct() -> None:
                    await run_ffmpeg(
                        transcode_args(source, direct_out, 720, VideoSettings.of(settings).transcode_preset)
                    )

                async def through_workflow() -> None:
                    target.unlink(missing_ok=True)  # a finished rendition would be reused, not transcoded
                    await client.execute_workflow(
                        TranscodeOnce.run,
                        Job(request=request, media_queue=settings.task_queue_for(MEDIA)),
                        id=f"bench-transcode-{uuid.uuid4().hex[:8]}",
                        task_queue=settings.task_queue + "-bench",
                        execution_timeout=timedelta(minutes=30),  # a broken setup fails, never hangs
                    )

                await direct()  # warm the page cache and FFmpeg itself once, unmeasured
                for _ in range(repeats):
                    comparison.add("direct ffmpeg", await timed(direct))
                    comparison.add("workflow", await timed(through_workflow))
        await db.close()
        comparison.notes["ratio"] = round(comparison.ratio("workflow"), 3)
        comparison.notes["meets_goal"] = comparison.ratio("workflow") >= GOAL
        return comparison
