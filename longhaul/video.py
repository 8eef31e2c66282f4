"""Models of the video pipeline shared by its events, workflow and activities."""

from __future__ import annotations

from pydantic import BaseModel, Field

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
