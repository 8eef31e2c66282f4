"""App storage of processed videos: renditions, thumbnails and analysis, per tenant and video id.

Written by the pipeline's last step as an idempotent upsert; read by status pages and by the cleanup
job (``archived_at``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import JSON, DateTime, String, select, tuple_, update
from sqlalchemy.orm import Mapped, mapped_column

from activities.video.models import VideoRecord, VideoResult
from longhaul.sdk import Base, Database, as_utc, insert_new, utcnow


class VideoRow(Base):
    __tablename__ = "videos"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    video_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(100))
    run_id: Mapped[str] = mapped_column(String(40))
    result: Mapped[Any] = mapped_column(JSON)
    processed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class VideoRef(BaseModel):
    """A video the cleanup job works on; (processed_at, tenant, video_id) is also its place in the scan."""

    tenant: str
    video_id: str
    processed_at: datetime
    files: list[str] = Field(default_factory=list, description="Renditions and thumbnails, media-relative.")


class StoredVideo(VideoRecord):
    processed_at: datetime
    archived_at: datetime | None


class VideoStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def upsert(self, record: VideoRecord) -> None:
        """Insert or replace the video's record: running it again (a retry, a replay) is harmless."""
        values = {
            "user_id": record.result.user_id,
            "run_id": record.run_id,
            "result": record.result.model_dump(mode="json"),
            "processed_at": utcnow(),
            "archived_at": None,
        }
        key = (record.tenant, record.result.video_id)
        async with self.db.sessions.begin() as session:
            if not await insert_new(session, VideoRow(tenant=key[0], video_id=key[1], **values)):
                await session.execute(
                    update(VideoRow)
                    .where(VideoRow.tenant == key[0], VideoRow.video_id == key[1])
                    .values(**values)
                )

    async def get(self, tenant: str, video_id: str) -> StoredVideo | None:
        async with self.db.session() as session:
            row = await session.scalar(
                select(VideoRow).where(VideoRow.tenant == tenant, VideoRow.video_id == video_id)
            )
            if row is None:
                return None
            return StoredVideo(
                tenant=row.tenant,
                run_id=row.run_id,
                result=VideoResult.model_validate(row.result),
                processed_at=as_utc(row.processed_at) or row.processed_at,
                archived_at=as_utc(row.archived_at),
            )

    async def expired(
        self, cutoff: datetime, after: VideoRef | None, limit: int, tenant: str | None = None
    ) -> list[VideoRef]:
        """Videos processed before ``cutoff`` and not archived (``tenant``'s only, if given), oldest first,
        resuming after ``after``."""
        statement = select(VideoRow).where(VideoRow.processed_at < cutoff, VideoRow.archived_at.is_(None))
        if tenant is not None:
            statement = statement.where(VideoRow.tenant == tenant)
        if after is not None:
            position = (VideoRow.processed_at, VideoRow.tenant, VideoRow.video_id)
            statement = statement.where(
                tuple_(*position) > tuple_(after.processed_at, after.tenant, after.video_id)
            )
        statement = statement.order_by(VideoRow.processed_at, VideoRow.tenant, VideoRow.video_id).limit(limit)
        async with self.db.session() as session:
            rows = list(await session.scalars(statement))
        return [
            VideoRef(
                tenant=row.tenant,
                video_id=row.video_id,
                processed_at=as_utc(row.processed_at) or row.processed_at,
                files=[
                    item["path"] for key in ("renditions", "thumbnails") for item in row.result.get(key, [])
                ],
            )
            for row in rows
        ]

    async def tenants_with_expired(self, cutoff: datetime) -> list[str]:
        """The tenants that have videos processed before ``cutoff`` and not archived, by name."""
        statement = (
            select(VideoRow.tenant)
            .where(VideoRow.processed_at < cutoff, VideoRow.archived_at.is_(None))
            .distinct()
            .order_by(VideoRow.tenant)
        )
        async with self.db.session() as session:
            return list(await session.scalars(statement))

    async def mark_archived(self, tenant: str, video_id: str) -> bool:
        async with self.db.sessions.begin() as session:
            result = await session.execute(
                update(VideoRow)
                .where(
                    VideoRow.tenant == tenant, VideoRow.video_id == video_id, VideoRow.archived_at.is_(None)
                )
                .values(archived_at=utcnow())
            )
        return bool(getattr(result, "rowcount", 0))
