"""Activities of the cleanup pipeline: find videos past their retention and delete their files."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from temporalio import activity

from activities.video.store import VideoRef, VideoStore
from longhaul.sdk import PipelineSettings, Resources, Settings


class ExpiredRequest(BaseModel):
    cutoff: datetime
    after: VideoRef | None
    limit: int
    tenant: str | None = None  # one tenant's videos (a tenant's cleanup run), or every tenant's


class Archived(BaseModel):
    tenant: str
    video_id: str
    deleted_files: int
    bytes_freed: int


class CleanupSettings(PipelineSettings, section="cleanup"):
    """When the cleanup runs and what it deletes (environment: ``CLEANUP_*``; the settings file's
    ``[cleanup]`` table)."""

    retention_days: float = Field(
        default=30, gt=0, description="Processed videos older than this lose their files to the cleanup job."
    )
    cron: str = Field(default="0 3 * * *", description="When the cleanup job runs (cron, UTC).")
    batch_size: int = Field(default=10, ge=1, le=1000, description="Videos deleted per batch.")
    batch_wait: float = Field(default=60, ge=0, description="Seconds of durable wait between batches.")
    batches_per_run: int = Field(
        default=20, ge=1, description="Batches before the cleanup continues as new (bounded history)."
    )


class CleanupActivities:
    def __init__(self, settings: Settings, videos: VideoStore) -> None:
        self.settings = settings
        self.videos = videos

    @activity.defn(name="cleanup.expired")
    async def expired(self, request: ExpiredRequest) -> list[VideoRef]:
        return await self.videos.expired(request.cutoff, request.after, request.limit, request.tenant)

    @activity.defn(name="cleanup.tenants_due")
    async def tenants_due(self, cutoff: datetime) -> list[str]:
        """The tenants with videos past the cutoff: one cleanup run each."""
        return await self.videos.tenants_with_expired(cutoff)

    @activity.defn(name="cleanup.archive")
    async def archive(self, video: VideoRef) -> Archived:
        """Delete the video's renditions and thumbnails, then mark it archived. A file already gone counts
        as deleted, so a retry (or a second run) finishes what the first began."""
        root = self.settings.media_root / video.tenant
        deleted, freed = await asyncio.to_thread(_delete, root, video.files)
        await self.videos.mark_archived(video.tenant, video.video_id)
        return Archived(
            tenant=video.tenant, video_id=video.video_id, deleted_files=deleted, bytes_freed=freed
        )


def cleanup_activities(resources: Resources) -> list[Callable[..., Any]]:
    cleanup = CleanupActivities(resources.settings, VideoStore(resources.db))
    return [cleanup.expired, cleanup.tenants_due, cleanup.archive]


def _delete(root: Path, files: list[str]) -> tuple[int, int]:
    deleted = freed = 0
    for relative in files:
        path = (root / relative).resolve()
        if not path.is_relative_to(root.resolve()):
            continue  # a record pointing outside the tenant's media dir is never followed
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            continue
        deleted += 1
        freed += size
    return deleted, freed
