"""Models of the video pipeline shared by its events, workflow and activities."""

from __future__ import annotations

from pathlib import PurePosixPath

from pydantic import BaseModel, Field, field_validator

from longhaul.sdk import EventPayload, EventType

# The renditions longhaul produces: name and height. Never upscaled: those above the source are skipped.
RENDITIONS: tuple[tuple[str, int], ...] = (("1080p", 1080), ("720p", 720), ("480p", 480))
THUMBNAILS = 5


class VideoInfo(BaseModel):
    """What probing the source found."""

    path: str = Field(description="The source file, relative to the media dir of its tenant or absolute.")
    container: str
    video_codec: str
    audio_codec: str | None
    width: int
    height: int
    duration: float = Field(description="Seconds.")
    fps: float | None
    size_bytes: int


class Rendition(BaseModel):
    name: str
    path: str = Field(description="Relative to the tenant's media dir: {video_id}/{name}.mp4.")
    width: int
    height: int
    duration: float
    size_bytes: int
    video_codec: str
    audio_codec: str | None


class Thumbnail(BaseModel):
    index: int
    path: str
    timestamp: float
    width: int
    height: int


class Segment(BaseModel):
    start: float
    end: float
    duration: float


class VideoAnalysis(BaseModel):
    """Cheap, real content analysis from one FFmpeg pass."""

    scene_changes: int
    scene_times: list[float]
    loudness_lufs: float | None = Field(description="EBU R128 integrated loudness; None without audio.")
    loudness_range_lu: float | None
    black_segments: list[Segment]
    silent_segments: list[Segment]


class ProbeRequest(BaseModel):
    tenant: str
    video_id: str
    file_path: str
    format: str | None = None


class TranscodeRequest(BaseModel):
    tenant: str
    video_id: str
    source: str
    rendition: str
    height: int
    source_duration: float
    has_audio: bool


class ThumbnailRequest(BaseModel):
    tenant: str
    video_id: str
    source: str
    index: int
    timestamp: float


class AnalysisRequest(BaseModel):
    tenant: str
    video_id: str
    source: str
    duration: float
    has_audio: bool


class VideoResult(BaseModel):
    """The pipeline's output, recorded in app storage and announced by ``video.processing.completed``."""

    video_id: str
    user_id: str
    source: VideoInfo
    renditions: list[Rendition]
    skipped: list[str] = Field(description="Renditions above the source height, not produced.")
    thumbnails: list[Thumbnail]
    analysis: VideoAnalysis


class VideoRecord(BaseModel):
    tenant: str
    run_id: str
    result: VideoResult


VIDEO_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$"


class VideoUploaded(EventPayload):
    """Payload of ``video.uploaded``: a video to process into renditions, thumbnails and an analysis."""

    video_id: str = Field(pattern=VIDEO_ID_PATTERN, description="Letters, digits, '_' and '-'.")
    user_id: str = Field(min_length=1, max_length=100)
    file_path: str = Field(
        min_length=1,
        max_length=1000,
        description="The file, relative to the upload dir (it may not leave it), or an http(s) URL.",
    )
    format: str | None = Field(default=None, max_length=20, description="Container hint, e.g. mp4.")
    duration: float | None = Field(default=None, gt=0, description="Claimed seconds; the probe decides.")

    @field_validator("file_path")
    @classmethod
    def _inside_upload_dir(cls, value: str) -> str:
        if value.startswith(("http://", "https://")):
            return value
        path = PurePosixPath(value)
        if "\x00" in value or path.is_absolute() or ".." in path.parts or value.startswith("~"):
            raise ValueError(
                "must be a path inside the upload dir (relative, without '..') or an http(s) URL"
            )
        return value


class VideoProcessingCompleted(EventPayload):
    video_id: str
    user_id: str
    duration: float
    renditions: list[Rendition]
    skipped: list[str]
    thumbnails: list[Thumbnail]
    analysis: VideoAnalysis


class VideoProcessingFailed(EventPayload):
    video_id: str
    user_id: str
    reason: str


VIDEO_UPLOADED = EventType(name="video.uploaded", version=1, schema=VideoUploaded)
VIDEO_COMPLETED = EventType(name="video.processing.completed", version=1, schema=VideoProcessingCompleted)
VIDEO_FAILED = EventType(name="video.processing.failed", version=1, schema=VideoProcessingFailed)
