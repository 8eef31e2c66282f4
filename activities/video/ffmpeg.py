"""Running FFmpeg from the ``imageio-ffmpeg`` wheel, and probing media with PyAV: no system packages.

FFmpeg runs as a child that dies with the worker (``PR_SET_PDEATHSIG``), reports its progress through
``-progress pipe:1``, and is killed at once when the calling task is cancelled.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import imageio_ffmpeg

from longhaul.sdk import die_with_parent

if TYPE_CHECKING:
    import av

STDERR_TAIL = 4000


class FfmpegError(RuntimeError):
    """FFmpeg exited with an error; the message ends with what it printed last."""


class UnreadableMediaError(ValueError):
    """The file is not media PyAV can read, or has no video stream."""


@cache
def ffmpeg_exe() -> str:
    return str(imageio_ffmpeg.get_ffmpeg_exe())


@dataclass(frozen=True)
class Progress:
    seconds: float
    speed: str
    line: str = ""  # FFmpeg's report as one line: frame, fps, out_time, bitrate, speed


@dataclass(frozen=True)
class MediaInfo:
    container: str
    video_codec: str
    audio_codec: str | None
    width: int
    height: int
    duration: float
    fps: float | None


def probe(path: Path) -> MediaInfo:
    """Container, codecs, size and duration of ``path`` (blocking: run it in a thread)."""
    import av  # here, not at the top: PyAV costs every API and worker process about 30 MB until used

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            video = next((s for s in container.streams.video), None)
            if video is None:
                raise UnreadableMediaError("no video stream")
            audio = next((s for s in container.streams.audio), None)
            duration = _duration(container, video)
            if not duration or duration <= 0:
                raise UnreadableMediaError("no duration")
            rate = video.average_rate
            return MediaInfo(
                container=_container_name(container.format.name, path),
                video_codec=video.codec_context.name,
                audio_codec=audio.codec_context.name if audio is not None else None,
                width=video.codec_context.width,
                height=video.codec_context.height,
                duration=duration,
                fps=float(rate) if rate else None,
            )
    except av.error.FFmpegError as error:  # its text names the file: keep just what went wrong
        raise UnreadableMediaError(error.strerror or type(error).__name__) from error


def _container_name(names: str, path: Path) -> str:
    """FFmpeg names demuxers by family ("mov,mp4,m4a,…"): prefer the member the file's extension names."""
    options = names.split(",")
    extension = path.suffix.lstrip(".").lower()
    return extension if extension in options else options[0]


def _duration(container: av.container.InputContainer, video: av.VideoStream) -> float | None:
    import av

    if video.duration is not None and video.time_base is not None:
        return float(video.duration * Fraction(video.time_base))
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def image_size(path: Path) -> tuple[int, int]:
    """Decode an image and return (width, height); raises UnreadableMediaError if it does not decode."""
    import av

    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
            return frame.width, frame.height
    except (av.error.FFmpegError, StopIteration) as error:
        raise UnreadableMediaError(f"{path.name} does not decode: {error}") from error


async def run_ffmpeg(
    args: Sequence[str],
    *,
    duration: float | None = None,
    on_progress: Callable[[Progress], Awaitable[None]] | None = None,
) -> str:
    """Run ``ffmpeg args`` and return everything it logged; raise FfmpegError if it fails.

    With ``on_progress``, it is called at each progress report FFmpeg makes (about twice a second).
    Cancelling the caller kills FFmpeg and waits for it to be gone before the cancellation proceeds.
    """
    process = await asyncio.create_subprocess_exec(
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-y",
        "-progress",
        "pipe:1",
        "-nostats",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=_background_child,
    )
    assert process.stdout is not None and process.stderr is not None
    log_task = asyncio.create_task(process.stderr.read())
    try:
        fields: dict[str, str] = {}
        async for raw in process.stdout:
            key, _, value = raw.decode(errors="replace").strip().partition("=")
            fields[key] = value
            if key == "progress" and on_progress is not None:
                await on_progress(_progress(fields))
        await process.wait()
        log = (await log_task).decode(errors="replace")
    except BaseException:
        if process.returncode is None:
            process.kill()
            await process.wait()
        log_task.cancel()
        raise
    if process.returncode != 0:
        raise FfmpegError(f"ffmpeg exited with {process.returncode}: {log[-STDERR_TAIL:].strip()}")
    return log


FFMPEG_NICENESS = 10
"""How much lower FFmpeg's CPU priority is than the worker's. A transcode takes every core it is given; on a
box it shares with the Temporal server, the API and the workers' short steps, at equal priority it starved
them (a CI run saw orders and greetings finish after three 1080p transcodes that should have outlasted them).
Niced, it takes only the CPU they leave: media work waits, the control plane does not."""


def _background_child() -> None:
    die_with_parent(signal.SIGKILL)()
    os.nice(FFMPEG_NICENESS)


def _progress(fields: dict[str, str]) -> Progress:
    micros = fields.get("out_time_us", "0")
    seconds = int(micros) / 1_000_000 if micros.lstrip("-").isdigit() else 0.0
    shown = ("frame", "fps", "out_time", "bitrate", "speed")
    line = " ".join(f"{key}={fields[key].strip()}" for key in shown if key in fields)
    return Progress(seconds=max(seconds, 0.0), speed=fields.get("speed", "N/A").strip(), line=line)


def percent_of(progress: Progress, duration: float | None) -> int:
    if not duration:
        return 0
    return max(0, min(99, int(progress.seconds * 100 / duration)))  # 100 only once FFmpeg has finished


def make_sample(path: Path, *, width: int, height: int, seconds: float, quiet: tuple[float, float]) -> Path:
    """Write a sample video: a test pattern with a 440 Hz tone; during ``quiet`` the picture is black and
    the sound silent, so analysis finds one black and one silent stretch and the scene cuts around them."""
    start, end = quiet
    video = f"testsrc2=size={width}x{height}:rate=25:duration={seconds}"
    audio = f"sine=frequency=440:sample_rate=44100:duration={seconds}"
    quiet_picture = f"drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='between(t,{start},{end})'"
    quiet_sound = f"volume=volume=0:enable='between(t,{start},{end})'"
    args = [
        "-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio,
        "-vf", quiet_picture, "-af", quiet_sound,
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
        "-shortest", str(path),
    ]  # fmt: skip
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True, timeout=600)
    return path
