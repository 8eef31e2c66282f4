"""Durable data streams from activities: ``await stream("ffmpeg-720p").append(line)``.

A stream belongs to the run whose activity writes it (or ``run_id``); its chunks are stored in app
storage in order (:mod:`longhaul.streams`) and read live or from the start as server-sent events
(``GET /api/runs/{id}/streams/{name}``), by the CLI (``longhaul runs stream``), both clients and the run
page. ``pipe`` writes an async iterator's chunks as they come, as many per write as arrived meanwhile.

Each chunk is stored once: the writer numbers its chunks, and an append repeated after a lost reply is
dropped by that number. A retried activity continues the stream (its chunks follow, marked with their
attempt); it does not replace what the earlier attempt wrote.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterable, Sequence
from contextvars import ContextVar

from sqlalchemy.exc import DBAPIError
from temporalio import activity

from longhaul.models import run_id_for
from longhaul.streams import MAX_CHUNK, StreamStore

WRITE_TRIES = 5  # a write that fails (storage away for a moment) is tried again, with the same numbers


class _Writer:
    """One activity attempt's streams: the store, who writes (the attempt, hashed), each stream's count."""

    def __init__(self, store: StreamStore, info: activity.Info) -> None:
        self.store = store
        where = f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}"
        self.writer = f"{hashlib.sha1(where.encode()).hexdigest()[:24]}/{info.attempt}"
        self.attempt = info.attempt
        self.run_id = run_id_for(info.workflow_id or "")
        self.counts: dict[tuple[str, str], int] = {}


_WRITER: ContextVar[_Writer | None] = ContextVar("longhaul_stream_writer", default=None)


def writing_streams(store: StreamStore) -> None:
    """Let the running activity write streams to ``store`` (the worker's activity interceptor calls it)."""
    _WRITER.set(_Writer(store, activity.info()))


def stream(name: str, *, run_id: str | None = None, store: StreamStore | None = None) -> RunStream:
    """The stream ``name`` of the activity's run (or of ``run_id``), to append to. A longhaul worker opens
    its store to every activity; elsewhere (an activity run by a test's ``ActivityEnvironment``), pass
    ``store``."""
    writer = _WRITER.get()
    if writer is None:
        if store is None:
            raise RuntimeError("stream() writes from an activity run by a longhaul worker, or pass store=")
        writer = _Writer(store, activity.info())
        _WRITER.set(writer)
    return RunStream(writer, run_id or writer.run_id, name)


class RunStream:
    """Appends to one stream of one run."""

    def __init__(self, writer: _Writer, run_id: str, name: str) -> None:
        self._writer = writer
        self.run_id = run_id
        self.name = name

    async def append(self, chunk: str) -> None:
        """Store ``chunk`` at the stream's end (returns once it is stored)."""
        await self.extend([chunk])

    async def extend(self, chunks: Sequence[str]) -> None:
        """Store ``chunks`` at the stream's end, in one write."""
        if not chunks:
            return
        too_long = next((len(chunk) for chunk in chunks if len(chunk) > MAX_CHUNK), None)
        if too_long is not None:
            raise ValueError(f"a chunk of {too_long} characters is over {MAX_CHUNK}: split it")
        key = (self.run_id, self.name)
        first = self._writer.counts.get(key, 0) + 1
        self._writer.counts[key] = first + len(chunks) - 1
        for attempt in range(1, WRITE_TRIES + 1):
            try:
                await self._writer.store.append(
                    self.run_id, self.name, writer=self._writer.writer, attempt=self._writer.attempt,
                    first_index=first, chunks=chunks,
                )  # fmt: skip
                return
            except DBAPIError:
                if attempt == WRITE_TRIES:
                    raise
                await asyncio.sleep(
                    0.1 * 2**attempt
                )  # the same numbers: a write that did land is not doubled

    async def pipe(self, source: AsyncIterable[str]) -> int:
        """Store each chunk of ``source`` as it comes; while a write is in flight, the chunks that arrive
        wait and go in the next write together. Returns how many were stored."""
        waiting: list[str] = []
        arrived = asyncio.Event()
        ended = False
        count = 0

        async def read() -> None:
            nonlocal ended
            try:
                async for chunk in source:
                    waiting.append(chunk)
                    arrived.set()
            finally:
                ended = True
                arrived.set()

        reader = asyncio.create_task(read())
        try:
            while True:
                await arrived.wait()
                arrived.clear()
                batch, waiting[:] = list(waiting), []
                if batch:
                    await self.extend(batch)
                    count += len(batch)
                if ended and not waiting:
                    break
            await reader  # its error, if it failed
        finally:
            reader.cancel()
        return count
