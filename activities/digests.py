"""Activities of the video digest: one message per user for the videos that finished close together (a
batch of ``video.processing.completed`` events, workflows/digests.py), recorded once per run."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from pydantic import BaseModel
from sqlalchemy import JSON, DateTime, Index, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column
from temporalio import activity

from longhaul.sdk import Base, Database, Resources, insert_ignoring_duplicates, utcnow


class VideoDigestRow(Base):
    """A digest as it would be sent: one per run, so a retried or redelivered step writes it once."""

    __tablename__ = "video_digests"
    __table_args__ = (Index("ix_video_digests_user", "tenant", "user_id", "created_at"),)

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(100))
    videos: Mapped[list[str]] = mapped_column(JSON)
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


_DIGESTS = cast(Table, VideoDigestRow.__table__)


class DigestRequest(BaseModel):
    tenant: str
    run_id: str
    user_id: str
    video_ids: list[str]
    seconds: float  # the videos' total duration


class Digest(BaseModel):
    message: str
    videos: int
    written: bool  # False: this run's digest existed already (a retry)


class DigestActivities:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._insert = insert_ignoring_duplicates(_DIGESTS, is_sqlite=db.is_sqlite)

    @activity.defn(name="digest.record")
    async def record(self, request: DigestRequest) -> Digest:
        """Write the user's digest, once per run."""
        count = len(request.video_ids)
        message = (
            f"{count} video{'s' if count != 1 else ''} ready: {', '.join(request.video_ids)} "
            f"({request.seconds:.0f} s in all)"
        )
        row = {
            "run_id": request.run_id,
            "tenant": request.tenant,
            "user_id": request.user_id,
            "videos": request.video_ids,
            "message": message,
            "created_at": utcnow(),
        }
        async with self.db.engine.begin() as conn:
            written = bool(getattr(await conn.execute(self._insert, row), "rowcount", 0))
        return Digest(message=message, videos=count, written=written)


def digest_activities(resources: Resources) -> list[Callable[..., Any]]:
    return [DigestActivities(resources.db).record]
