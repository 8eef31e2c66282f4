"""The video pipeline's settings (environment: ``VIDEO_*``; the settings file's ``[video]`` table)."""

from __future__ import annotations

import os

from pydantic import Field

from longhaul.sdk import PipelineSettings


class VideoSettings(PipelineSettings, section="video"):
    """How much FFmpeg work one worker takes on, and how the renditions are encoded."""

    max_concurrent_transcodes: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description="FFmpeg jobs (transcodes, thumbnails, analysis) one worker runs at once; default: cores.",
    )
    transcode_preset: str = Field(
        default="veryfast", description="x264 preset of the renditions (speed against compression)."
    )
