"""Durable data streams: an activity appends (or pipes) chunks to a stream of its run; they are stored in
order, once each, a retried attempt continuing after the first; read as server-sent events from the
start, after a chunk (Last-Event-ID) and live, with an API key or an access token scoped to the run;
pruned after their retention. On SQLite and PostgreSQL, with the API's dispatcher and a worker."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from longhaul.api import create_app
from longhaul.config import Settings
from longhaul.db import utcnow
from longhaul.server.dispatcher import Dispatcher
from longhaul.server.service import RunService
from longhaul.server.worker import build_worker
from longhaul.storage import RunStore
from tests.apps import serving, sse_events, wait_for_status
from tests.pipelines import TEST_CATALOG
from tests.postgres import both_databases

pytestmark = both_databases


@pytest.fixture
async def api(
    temporal_address: str, dev_client: Client, store: RunStore, settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    """The API on a real port (streams are read as they come), with a worker for the test catalog."""
    app = create_app(settings, TEST_CATALOG)
    async with serving(app) as url, build_worker(dev_client, store, settings, TEST_CATALOG):
        _, key = await app.state.keys.create("default", "tests")
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as http:
            yield http


async def _streamer(api: httpx.AsyncClient, key: str, **asked: Any) -> str:
    sent = await api.post("/api/events/stream.asked", json={"payload": {"key": key, **asked}})
    assert sent.status_code == 202, sent.text
    return str(sent.json()["runs"][0]["run_id"])


async def _read(api: httpx.AsyncClient, path: str, **kwargs: Any) -> list[tuple[str, Any]]:
    """The events of a stream read to its end."""
    async with api.stream("GET", path, timeout=30, **kwargs) as response:
        assert response.status_code == 200, await response.aread()
        return sse_events((await response.aread()).decode())


async def test_an_activitys_chunks_are_read_in_order_from_the_start_and_the_stream_ends_with_the_run(
    api: httpx.AsyncClient,
) -> None:
    run_id = await _streamer(api, "plain", lines=5)
    piped = await _streamer(api, "piped", lines=40, piped=True)
    for run in (run_id, piped):
        await wait_for_status(api, run, "completed")
    events = await _read(api, f"/api/runs/{run_id}/streams/lines")
    assert [kind for kind, _ in events] == ["chunk"] * 5 + ["end"]
    assert [(c["seq"], c["data"], c["attempt"]) for _, c in events[:5]] == [
        (n, f"line {n}", 1) for n in range(1, 6)
    ]
    assert events[-1][1] == {"status": "completed"}
    listed = (await api.get(f"/api/runs/{run_id}/streams")).json()
    assert [(s["name"], s["chunks"]) for s in listed] == [("lines", 5)]
    piped_events = await _read(api, f"/api/runs/{piped}/streams/lines")
    assert [c["data"] for kind, c in piped_events if kind == "chunk"] == [f"line {n}" for n in range(1, 41)]
    resumed = await _read(api, f"/api/runs/{run_id}/streams/lines", headers={"Last-Event-ID": "3"})
    assert [c["seq"] for kind, c in resumed if kind == "chunk"] == [4, 5]
    after = await _read(api, f"/api/runs/{run_id}/streams/lines?after=4")
    assert [c["seq"] for kind, c in after if kind == "chunk"] == [5]


async def test_a_retried_attempt_continues_the_stream_after_the_first_and_no_chunk_is_stored_twice(
    api: httpx.AsyncClient, store: RunStore
) -> None:
    run_id = await _streamer(api, "retry", lines=4, fail_after=2)
    await wait_for_status(api, run_id, "completed")
    chunks = await store.streams.read(run_id, "lines")
    assert [(c.seq, c.data, c.attempt) for c in chunks] == [
        (1, "line 1", 1), (2, "line 2", 1),
        (3, "line 1", 2), (4, "line 2", 2), (5, "line 3", 2), (6, "line 4", 2),
    ]  # fmt: skip

    # An append repeated after a lost reply (the same writer and numbers) is stored once.
    def again(*chunks: str) -> Any:
        return store.streams.append(run_id, "other", writer="w/1", attempt=1, first_index=1, chunks=chunks)

    assert await again("x", "y") == 2
    assert await again("x", "y") == 0
    assert await again("x", "y", "z") == 1
    assert [c.data for c in await store.streams.read(run_id, "other")] == ["x", "y", "z"]


async def test_a_reader_gets_chunks_live_as_they_are_written(api: httpx.AsyncClient) -> None:
    run_id = await _streamer(api, "live", lines=6, pause=0.4)
    arrived: list[tuple[float, int]] = []
    async with api.stream("GET", f"/api/runs/{run_id}/streams/lines", timeout=30) as response:
        kind = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: ") and kind == "chunk":
                arrived.append((time.monotonic(), json.loads(line.removeprefix("data: "))["seq"]))
            elif line.startswith("data: ") and kind == "end":
                break
    assert [seq for _, seq in arrived] == [1, 2, 3, 4, 5, 6]
    assert arrived[-1][0] - arrived[0][0] > 1.5  # one by one as written, not all at the end


async def test_an_access_token_reads_its_runs_streams_only(api: httpx.AsyncClient) -> None:
    mine = await _streamer(api, "token", lines=2)
    other = await _streamer(api, "token-other", lines=2)
    for run in (mine, other):
        await wait_for_status(api, run, "completed")
    token = (await api.post("/api/access-tokens", json={"run_id": mine})).json()["token"]
    async with httpx.AsyncClient(base_url=str(api.base_url), timeout=30) as browser:
        read = await browser.get(f"/api/runs/{mine}/streams/lines", params={"access_token": token})
        assert read.status_code == 200 and [k for k, _ in sse_events(read.text)] == ["chunk", "chunk", "end"]
        refused = await browser.get(f"/api/runs/{other}/streams/lines", params={"access_token": token})
        assert refused.status_code == 404
        assert (await browser.get(f"/api/runs/{mine}/streams/lines")).status_code == 401
    bad = await api.get(f"/api/runs/{mine}/streams/no%20spaces")
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["path", "name"]


async def test_chunks_older_than_the_retention_are_pruned(
    api: httpx.AsyncClient, store: RunStore, dev_client: Client, settings: Settings
) -> None:
    run_id = await _streamer(api, "old", lines=3)
    await wait_for_status(api, run_id, "completed")
    kept_an_hour = settings.model_copy(update={"stream_retention_hours": 1})
    service = RunService(dev_client, store, kept_an_hour, TEST_CATALOG)
    dispatcher = Dispatcher(service)
    assert await dispatcher.prune_streams() == 0  # written just now: kept
    assert await store.streams.prune(utcnow() + timedelta(seconds=1)) == 3
    assert await store.streams.read(run_id, "lines") == []
