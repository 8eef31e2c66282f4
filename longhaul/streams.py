"""Durable data streams: what a run's activities write as they go (FFmpeg's progress lines, an LLM's tokens,
rows as they are parsed), kept in app storage and read live or from the start.

A stream is named per run (``ffmpeg-720p``); its chunks are text, numbered from 1 in the order they were
stored (``seq``), each at most :data:`MAX_CHUNK` characters. Who wrote a chunk is kept with it: the
activity's attempt (``attempt``) and the writer's own count (``index``), unique per run, stream and
writer, so an append repeated after a lost reply is stored once. A retried activity **continues** the
stream: its chunks follow the earlier attempt's, marked with their attempt number; nothing is
replaced. Appends to one stream are numbered under a lock (the SQLite write lock; a PostgreSQL advisory
lock on the stream), so ``seq`` follows the commit order and a reader that resumes after a ``seq`` misses
nothing.

Chunks are kept for :attr:`longhaul.config.Settings.stream_retention_hours` after they were written
(:meth:`StreamStore.prune`, by the dispatcher's upkeep), and go with their run.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column

from longhaul.db import Base, Database, as_utc, lock_scopes, utcnow, writing
from longhaul.models import Chunk, StreamInfo

MAX_CHUNK = 65_536  # characters in one chunk
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"


class RunStreamChunkRow(Base):
    __tablename__ = "run_stream_chunks"
    __table_args__ = (
        UniqueConstraint("run_id", "stream", "seq", name="uq_run_stream_chunks_seq"),
        UniqueConstraint("run_id", "stream", "writer", "index", name="uq_run_stream_chunks_writer"),
        Index("ix_run_stream_chunks_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)  # what the poller follows
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    stream: Mapped[str] = mapped_column(String(100))
    seq: Mapped[int] = mapped_column(Integer)
    writer: Mapped[str] = mapped_column(String(64))  # the writing activity's attempt (hashed)
    attempt: Mapped[int] = mapped_column(Integer)
    index: Mapped[int] = mapped_column(Integer)  # the writer's own count, from 1
    data: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


CHUNKS = cast(Table, RunStreamChunkRow.__table__)


class StreamStore:
    """The chunks of every run's streams (one per process, sharing its database)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def append(
        self, run_id: str, stream: str, *, writer: str, attempt: int, first_index: int, chunks: Sequence[str]
    ) -> int:
        """Store ``chunks`` (the writer's ``first_index``-th and on) at the stream's end, skipping those the
        writer stored before (a repeated append); how many were new."""
        if not chunks:
            return 0
        indexes = range(first_index, first_index + len(chunks))
        key = (CHUNKS.c.run_id == run_id, CHUNKS.c.stream == stream)
        async with writing(self.db) as conn:
            await lock_scopes(conn, [f"stream:{run_id}/{stream}"], is_sqlite=self.db.is_sqlite)
            stored = set(
                await conn.scalars(
                    select(CHUNKS.c.index).where(
                        *key, CHUNKS.c.writer == writer, CHUNKS.c.index.in_(list(indexes))
                    )
                )
            )
            last = await conn.scalar(select(func.coalesce(func.max(CHUNKS.c.seq), 0)).where(*key))
            now = utcnow()
            rows: list[dict[str, Any]] = []
            for index, data in zip(indexes, chunks, strict=True):
                if index not in stored:
                    rows.append(
                        {"run_id": run_id, "stream": stream, "seq": int(last or 0) + len(rows) + 1,
                         "writer": writer, "attempt": attempt, "index": index, "data": data,
                         "created_at": now}
                    )  # fmt: skip
            if rows:
                await conn.execute(insert(CHUNKS), rows)
        return len(rows)

    async def read(self, run_id: str, stream: str, *, after: int = 0, limit: int = 1000) -> list[Chunk]:
        """The stream's chunks after ``seq`` ``after``, oldest first."""
        statement = (
            select(CHUNKS.c.seq, CHUNKS.c.data, CHUNKS.c.attempt, CHUNKS.c.created_at)
            .where(CHUNKS.c.run_id == run_id, CHUNKS.c.stream == stream, CHUNKS.c.seq > after)
            .order_by(CHUNKS.c.seq)
            .limit(limit)
        )
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return [
            Chunk(seq=seq, data=data, attempt=attempt, at=as_utc(at) or at) for seq, data, attempt, at in rows
        ]

    async def streams_of(self, run_id: str) -> list[StreamInfo]:
        """The run's streams, by name."""
        statement = (
            select(CHUNKS.c.stream, func.count(), func.max(CHUNKS.c.seq), func.max(CHUNKS.c.created_at))
            .where(CHUNKS.c.run_id == run_id)
            .group_by(CHUNKS.c.stream)
            .order_by(CHUNKS.c.stream)
        )
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return [
            StreamInfo(name=name, chunks=count, last_seq=last, last_at=as_utc(at) or at)
            for name, count, last, at in rows
        ]

    async def newest_id(self) -> int:
        async with self.db.engine.connect() as conn:
            return int(await conn.scalar(select(func.coalesce(func.max(CHUNKS.c.id), 0))) or 0)

    async def written_since(self, last_id: int) -> tuple[int, set[tuple[str, str]]]:
        """The streams (run id, name) written to after chunk ``last_id``, and the newest chunk's id."""
        statement = (
            select(CHUNKS.c.run_id, CHUNKS.c.stream, func.max(CHUNKS.c.id))
            .where(CHUNKS.c.id > last_id)
            .group_by(CHUNKS.c.run_id, CHUNKS.c.stream)
        )
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return max([last_id, *(newest for _, _, newest in rows)]), {(run, name) for run, name, _ in rows}

    async def prune(self, before: datetime, batch: int = 5000) -> int:
        """Delete the chunks written before ``before`` (a batch at a time); how many."""
        pruned = 0
        while True:
            oldest = (
                select(CHUNKS.c.id).where(CHUNKS.c.created_at < before).order_by(CHUNKS.c.id).limit(batch)
            )
            async with self.db.engine.begin() as conn:
                ids = list(await conn.scalars(oldest))
                if ids:
                    await conn.execute(delete(CHUNKS).where(CHUNKS.c.id.in_(ids)))
            pruned += len(ids)
            if len(ids) < batch:
                return pruned
