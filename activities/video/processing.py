"""Activities of the video pipeline: probe, transcode, thumbnail, analyse, record.

Each is idempotent. Outputs have deterministic names under the tenant's media dir
(``{video_id}/{rendition}.mp4``, ``{video_id}/thumb-{n}.jpg``) and are written to a temporary name, then
renamed atomically: a file under its final name is always complete, and one that verifies (probe: height,
duration) is not produced again. FFmpeg jobs heartbeat their progress, so a worker that dies is noticed
within the heartbeat timeout and a cancelled run stops FFmpeg at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.video.ffmpeg import (
    FfmpegError,
    Progress,
    UnreadableMediaError,
    image_size,
    percent_of,
    probe,
    run_ffmpeg,
)
from activities.video.models import (
    AnalysisRequest,
    ProbeRequest,
    Rendition,
    Segment,
    Thumbnail,
    ThumbnailRequest,
    TranscodeRequest,
    VideoAnalysis,
    VideoInfo,
    VideoRecord,
)
from activities.video.settings import VideoSettings
from activities.video.store import VideoStore
from longhaul.sdk import Resources, RunStore, Settings, report_step, stream

INVALID_VIDEO = "InvalidVideo"
DURATION_TOLERANCE = 0.5  # seconds a rendition may differ from its source and still count as complete
PROGRESS_WRITE_INTERVAL = 1.0  # seconds between run-record progress writes of one job
TRANSCODE_SPAN = (10, 70)  # the part of the run's percent the transcodes cover


def invalid(reason: str) -> ApplicationError:
    """A bad input: retrying cannot help, the run fails at once with ``reason``."""
    return ApplicationError(reason, type=INVALID_VIDEO, non_retryable=True)


@contextlib.asynccontextmanager
async def heartbeating(interval: float = 1.0) -> AsyncIterator[list[object]]:
    """Heartbeat every ``interval`` seconds with the latest details put in the yielded list, even while
    FFmpeg reports nothing, so cancellation and worker death are noticed promptly."""
    details: list[object] = []

    async def beat() -> None:
        while True:
            activity.heartbeat(*details)
            await asyncio.sleep(interval)

    task = asyncio.create_task(beat())
    try:
        yield details
    finally:
        task.cancel()


class VideoActivities:
    """The worker creates one instance with its settings and stores."""

    def __init__(self, settings: Settings, runs: RunStore, videos: VideoStore) -> None:
        self.settings = settings
        self.preset = VideoSettings.of(settings).transcode_preset
        self.runs = runs
        self.videos = videos

    def video_dir(self, tenant: str, video_id: str) -> Path:
        return self.settings.media_root / tenant / video_id

    # -- probe ----------------------------------------------------------------------------------------------

    @activity.defn(name="video.probe")
    async def probe(self, request: ProbeRequest) -> VideoInfo:
        """Find the source (in the upload dir, or download it) and read container, codecs and duration."""
        source = await self._source(request)
        try:
            info = await asyncio.to_thread(probe, source)
        except UnreadableMediaError as error:
            raise invalid(f"not a readable video: {error}") from None
        if request.format and request.format.lower() not in info.container.split(","):
            activity.logger.info("declared format %s, found %s", request.format, info.container)
        return VideoInfo(
            path=str(source),
            container=info.container,
            video_codec=info.video_codec,
            audio_codec=info.audio_codec,
            width=info.width,
            height=info.height,
            duration=info.duration,
            fps=info.fps,
            size_bytes=source.stat().st_size,
        )

    async def _source(self, request: ProbeRequest) -> Path:
        if request.file_path.startswith(("http://", "https://")):
            return await self._download(request)
        root = self.settings.upload_root
        path = (root / request.file_path).resolve()
        if not path.is_relative_to(root):
            raise invalid(f"file_path {request.file_path!r} leaves the upload dir")
        if not path.is_file():
            raise invalid(f"no file {request.file_path!r} in the upload dir")
        return path

    async def _download(self, request: ProbeRequest) -> Path:
        """Download to ``{video_id}/source{ext}``; a complete earlier download is reused."""
        suffix = Path(urlparse(request.file_path).path).suffix[:10] or ".bin"
        target = self.video_dir(request.tenant, request.video_id) / f"source{suffix}"
        if target.is_file():
            return target
        partial = fresh_partial(target)
        try:
            async with (
                heartbeating() as details,
                httpx.AsyncClient(timeout=60, follow_redirects=True) as http,
                http.stream("GET", request.file_path) as response,
            ):
                if 400 <= response.status_code < 500:  # the URL is wrong: retrying cannot help
                    raise invalid(f"downloading {request.file_path} failed: HTTP {response.status_code}")
                response.raise_for_status()
                with partial.open("wb") as out:
                    async for chunk in response.aiter_bytes(1 << 20):
                        out.write(chunk)
                        details[:] = [{"downloaded_bytes": out.tell()}]
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return target

    # -- transcode ------------------------------------------------------------------------------------------

    @activity.defn(name="video.transcode")
    async def transcode(self, request: TranscodeRequest) -> Rendition:
        """H.264/AAC MP4 at ``request.height``; reuses a complete earlier output."""
        out_dir = self.video_dir(request.tenant, request.video_id)
        target = out_dir / f"{request.rendition}.mp4"
        done = await self._verified_rendition(target, request)
        if done is not None:
            activity.logger.info("%s already complete; not transcoding again", target.name)
            await report_step(self.runs, "transcoding", request.rendition, 100, "reused", span=TRANSCODE_SPAN)
            return done
        partial = fresh_partial(target)
        args = transcode_args(Path(request.source), partial, request.height, self.preset)
        try:
            await self._ffmpeg(args, request.source_duration, step=request.rendition, span=TRANSCODE_SPAN)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        rendition = await self._verified_rendition(target, request)
        if rendition is None:
            target.unlink(missing_ok=True)
            raise FfmpegError(f"{target.name} does not verify after transcoding")
        await report_step(self.runs, "transcoding", request.rendition, 100, "done", span=TRANSCODE_SPAN)
        return rendition

    async def _verified_rendition(self, path: Path, request: TranscodeRequest) -> Rendition | None:
        return await asyncio.to_thread(verified_rendition, path, request)

    async def _ffmpeg(self, args: list[str], duration: float, *, step: str, span: tuple[int, int]) -> str:
        """Run FFmpeg, heartbeating its progress, reporting it to the run record (throttled) and writing
        each of FFmpeg's reports to the run's ``ffmpeg-<rendition>`` data stream."""
        last_write = 0.0
        lines = stream(f"ffmpeg-{step}", store=self.runs.streams)
        async with heartbeating() as details:

            async def on_progress(progress: Progress) -> None:
                nonlocal last_write
                percent = percent_of(progress, duration)
                details[:] = [{"percent": percent, "speed": progress.speed}]
                try:
                    await lines.append(progress.line)
                except Exception as error:  # a progress line never fails the transcode
                    activity.logger.warning("ffmpeg-%s stream: line not stored: %s", step, error)
                if time.monotonic() - last_write >= PROGRESS_WRITE_INTERVAL:
                    last_write = time.monotonic()
                    await report_step(
                        self.runs, "transcoding", step, percent, f"speed {progress.speed}", span=span
                    )

            return await run_ffmpeg(args, duration=duration, on_progress=on_progress)

    # -- thumbnails -----------------------------------------------------------------------------------------

    @activity.defn(name="video.thumbnail")
    async def thumbnail(self, request: ThumbnailRequest) -> Thumbnail:
        """One JPEG frame at ``request.timestamp``; reuses a complete earlier one."""
        out_dir = self.video_dir(request.tenant, request.video_id)
        target = out_dir / f"thumb-{request.index}.jpg"
        if not target.is_file():
            partial = fresh_partial(target)
            args = ["-ss", f"{request.timestamp:.3f}", "-i", request.source, "-frames:v", "1", "-q:v", "3"]
            try:
                await run_ffmpeg([*args, "-f", "image2", "-c:v", "mjpeg", str(partial)])
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
        try:
            width, height = await asyncio.to_thread(image_size, target)
        except UnreadableMediaError:
            target.unlink(missing_ok=True)
            raise
        return Thumbnail(
            index=request.index,
            path=f"{request.video_id}/{target.name}",
            timestamp=request.timestamp,
            width=width,
            height=height,
        )

    # -- analysis -------------------------------------------------------------------------------------------

    @activity.defn(name="video.analyze")
    async def analyze(self, request: AnalysisRequest) -> VideoAnalysis:
        """Scene changes, loudness, black and silent stretches: one decoding pass, no output file."""
        video = "[0:v]blackdetect=d=0.5:pix_th=0.10,scdet=threshold=10[v]"
        audio = ";[0:a]ebur128=framelog=quiet,silencedetect=n=-50dB:d=0.5[a]" if request.has_audio else ""
        maps = ["-map", "[v]"] + (["-map", "[a]"] if request.has_audio else [])
        args = [
            "-loglevel",
            "info",
            "-i",
            request.source,
            "-filter_complex",
            video + audio,
            *maps,
            "-f",
            "null",
            "-",
        ]
        async with heartbeating() as details:

            async def on_progress(progress: Progress) -> None:
                details[:] = [{"percent": percent_of(progress, request.duration)}]

            log = await run_ffmpeg(args, duration=request.duration, on_progress=on_progress)
        return parse_analysis(log, request.duration)

    # -- record ---------------------------------------------------------------------------------------------

    @activity.defn(name="video.record")
    async def record(self, record: VideoRecord) -> None:
        """Upsert the video's renditions, thumbnails and analysis in app storage."""
        await self.videos.upsert(record)


def fresh_partial(target: Path) -> Path:
    """Where this attempt writes ``target`` before renaming it into place (a reader never sees half a
    file): ``.<name>.<attempt>.part`` beside it. What earlier attempts left there is removed first: they
    died (a killed worker) or timed out, and one that still runs somewhere fails at its rename, its result
    unwanted anyway."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.*.part"):
        stale.unlink(missing_ok=True)
    return target.with_name(f".{target.name}.{activity.info().attempt}.part")


def verified_rendition(path: Path, request: TranscodeRequest) -> Rendition | None:
    """The rendition at ``path`` if it is complete: decodable, right height, full duration, audio kept."""
    if not path.is_file():
        return None
    try:
        info = probe(path)
    except UnreadableMediaError:
        return None
    if info.height != request.height or abs(info.duration - request.source_duration) > DURATION_TOLERANCE:
        return None
    if request.has_audio and info.audio_codec is None:
        return None
    return Rendition(
        name=request.rendition,
        path=f"{request.video_id}/{path.name}",
        width=info.width,
        height=info.height,
        duration=info.duration,
        size_bytes=path.stat().st_size,
        video_codec=info.video_codec,
        audio_codec=info.audio_codec,
    )


def transcode_args(source: Path, output: Path, height: int, preset: str) -> list[str]:
    """The FFmpeg arguments of one rendition (shared with the benchmark, which runs them directly)."""
    return [
        "-i", str(source),
        "-map", "0:v:0", "-map", "0:a:0?",
        "-vf", f"scale=-2:{height}",
        "-c:v", "libx264", "-preset", preset, "-crf", "23", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "128k",
        "-movflags", "+faststart",
        "-f", "mp4", str(output),
    ]  # fmt: skip


_SCENE = re.compile(r"lavfi\.scd\.time: ([\d.]+)")
_BLACK = re.compile(r"black_start:([\d.]+) black_end:([\d.]+) black_duration:([\d.]+)")
_SILENCE_START = re.compile(r"silence_start: (-?[\d.]+)")
_SILENCE_END = re.compile(r"silence_end: ([\d.]+) \| silence_duration: ([\d.]+)")
_LOUDNESS = re.compile(r"Integrated loudness:\s+I:\s+(-?[\d.]+|-inf) LUFS", re.S)
_RANGE = re.compile(r"Loudness range:\s+LRA:\s+([\d.]+) LU", re.S)


def parse_analysis(log: str, duration: float) -> VideoAnalysis:
    """Read the filters' findings from FFmpeg's log."""
    scenes = [round(float(t), 3) for t in _SCENE.findall(log)]
    black = [Segment(start=float(s), end=float(e), duration=float(d)) for s, e, d in _BLACK.findall(log)]
    silent: list[Segment] = []
    start: float | None = None
    for line in log.splitlines():
        if (match := _SILENCE_START.search(line)) is not None:
            start = max(float(match.group(1)), 0.0)
        elif (match := _SILENCE_END.search(line)) is not None and start is not None:
            silent.append(Segment(start=start, end=float(match.group(1)), duration=float(match.group(2))))
            start = None
    if start is not None:  # silent up to the end
        silent.append(Segment(start=start, end=duration, duration=round(duration - start, 6)))
    loudness = _LOUDNESS.search(log)
    loudness_range = _RANGE.search(log)
    lufs = loudness.group(1) if loudness else None
    return VideoAnalysis(
        scene_changes=len(scenes),
        scene_times=scenes,
        loudness_lufs=float(lufs) if lufs and lufs != "-inf" else None,
        loudness_range_lu=float(loudness_range.group(1)) if loudness_range else None,
        black_segments=black,
        silent_segments=silent,
    )


def _activities(resources: Resources) -> VideoActivities:
    return VideoActivities(resources.settings, resources.store, VideoStore(resources.db))


def recording_activities(resources: Resources) -> list[Callable[..., Any]]:
    """The short app-storage step, on the main task queue."""
    return [_activities(resources).record]


def media_activities(resources: Resources) -> list[Callable[..., Any]]:
    """The FFmpeg jobs, on the media task queue with its own concurrency."""
    video = _activities(resources)
    return [video.probe, video.transcode, video.thumbnail, video.analyze]
