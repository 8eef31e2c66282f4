"""A run's data streams over HTTP: the list, and each stream as server-sent events, from the start (or after
``Last-Event-ID``) and live until the run has finished, for API keys and public access tokens scoped to
the run (or a tag it carries).

Live chunks come from one poller per process (:class:`StreamWatch`): it asks storage which streams were
written since it last looked — one query a tick, and none while nobody reads live — and wakes their
readers, who then read their own stream by ``seq``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import StreamingResponse

from longhaul.api.deps import ERRORS, RUN_PATH, Service
from longhaul.api.realtime import STREAM_KEEPALIVE_SECONDS, STREAM_RESPONSES, ViewerOf, expiring, sse
from longhaul.models import StreamInfo
from longhaul.storage import RunStore
from longhaul.streams import NAME_PATTERN, StreamStore

log = logging.getLogger("longhaul.api")
router = APIRouter(tags=["realtime"])

POLL_SECONDS = 0.05  # how soon a chunk written by another process reaches its live readers
RECHECK_SECONDS = 1.0  # a reader not woken meanwhile reads its stream again (and whether the run ended)
READ_PAGE = 500  # chunks read per query


class StreamWatch:
    """The stream poller of one process (``run`` as a task for the process's life)."""

    def __init__(self, store: StreamStore, poll_seconds: float = POLL_SECONDS) -> None:
        self.store = store
        self.poll_seconds = poll_seconds
        self._readers: dict[tuple[str, str], set[asyncio.Event]] = {}
        self._someone = asyncio.Event()

    @contextlib.asynccontextmanager
    async def watch(self, run_id: str, name: str) -> AsyncIterator[asyncio.Event]:
        """An event set whenever ``name`` of ``run_id`` may have new chunks (read them *after* entering)."""
        woken = asyncio.Event()
        self._readers.setdefault((run_id, name), set()).add(woken)
        self._someone.set()
        try:
            yield woken
        finally:
            readers = self._readers.get((run_id, name), set())
            readers.discard(woken)
            if not readers:
                self._readers.pop((run_id, name), None)

    async def run(self) -> None:
        while True:
            if not self._readers:
                self._someone.clear()
                await self._someone.wait()
            try:
                last = await self.store.newest_id()
                while self._readers:
                    last, written = await self.store.written_since(last)
                    for key in written:
                        for woken in self._readers.get(key, ()):
                            woken.set()
                    await asyncio.sleep(self.poll_seconds)
            except Exception:  # storage away for a moment: readers re-read on their own meanwhile
                log.exception("reading written streams failed; retrying")
                await asyncio.sleep(1.0)


@router.get(RUN_PATH + "/streams", response_model=list[StreamInfo], responses=ERRORS)
async def list_streams(run_id: str, service: Service, viewer: ViewerOf) -> list[StreamInfo]:
    """The run's data streams: each one's name, chunk count and last write."""
    await viewer.visible(service.store, run_id)
    return await service.store.streams.streams_of(run_id)


@router.get(RUN_PATH + "/streams/{name}", response_class=StreamingResponse, responses=STREAM_RESPONSES)
async def stream_chunks(
    run_id: str,
    name: Annotated[str, Path(pattern=NAME_PATTERN)],
    request: Request,
    service: Service,
    viewer: ViewerOf,
    after: Annotated[int, Query(ge=0, description="Start after this chunk (its seq); 0: the start.")] = 0,
    last_event_id: Annotated[
        int | None, Header(ge=0, description="Sent by EventSource when it reconnects: resume after it.")
    ] = None,
) -> StreamingResponse:
    """Server-sent events: ``chunk`` with each chunk of the stream (``seq``, ``data``, ``attempt``, ``at``;
    the event id is its ``seq``) from the start, or after ``after`` / ``Last-Event-ID``, then live; ``end``
    once the run has finished and every chunk is sent. A stream not written yet is empty until it is."""
    await viewer.visible(service.store, run_id)
    watch: StreamWatch = request.app.state.stream_watch
    start = max(after, last_event_id or 0)
    return sse(expiring(viewer, chunk_events(request, service.store, watch, run_id, name, start)))


async def chunk_events(
    request: Request, store: RunStore, watch: StreamWatch, run_id: str, name: str, after: int
) -> AsyncIterator[str]:
    async with watch.watch(run_id, name) as woken:
        last_sent = time.monotonic()
        while True:
            chunks = await store.streams.read(run_id, name, after=after, limit=READ_PAGE)
            for chunk in chunks:
                yield f"id: {chunk.seq}\nevent: chunk\ndata: {chunk.model_dump_json()}\n\n"
                after = chunk.seq
            if len(chunks) == READ_PAGE:
                continue
            if chunks:
                last_sent = time.monotonic()
            elif not woken.is_set():
                if end := await _ended(store, run_id, name, after):
                    yield end
                    return
                if time.monotonic() - last_sent > STREAM_KEEPALIVE_SECONDS:
                    last_sent = time.monotonic()
                    yield ": keep-alive\n\n"
            if await request.is_disconnected():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), RECHECK_SECONDS)
            woken.clear()


async def _ended(store: RunStore, run_id: str, name: str, after: int) -> str | None:
    """The ``end`` event, if the run has finished (or is gone) and the stream has nothing after ``after``
    (a chunk written just before the run closed is read first)."""
    run = await store.get(run_id, logs=False)
    if run is not None and not run.status.terminal:
        return None
    if run is not None and await store.streams.read(run_id, name, after=after, limit=1):
        return None
    return f"event: end\ndata: {json.dumps({'status': run.status if run else 'deleted'})}\n\n"
