"""Realtime for browsers: public access tokens and run streams (one run, or by tag), over a real socket
(uvicorn), a real dev server, a real worker; and the example page in a real Chromium, watching a real
video's processing (FFmpeg) reach completed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from activities.video.ffmpeg import make_sample
from longhaul.access import AccessScope, mint
from longhaul.api import create_app
from longhaul.api.changes import POLL_SECONDS, RunChanges
from longhaul.config import Settings
from longhaul.keys import KeyStore
from longhaul.server.worker import build_worker
from longhaul.signing import signing_key
from longhaul.storage import RunStore
from tests.apps import serving, wait_for_status
from tests.browser import offline_page
from tests.pipelines import TEST_CATALOG

ORIGIN = "https://app.example.com"


@dataclass
class Api:
    url: str
    http: httpx.AsyncClient  # with an API key of the tenant "default"
    keys: KeyStore
    changes: RunChanges

    def anonymous(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30)


@pytest.fixture
async def api(
    temporal_address: str, dev_client: Client, store: RunStore, settings: Settings
) -> AsyncIterator[Api]:
    """The API on a real port (streams are read as they come), with a worker for the test catalog."""
    app = create_app(settings.model_copy(update={"realtime_cors_origins": [ORIGIN]}), TEST_CATALOG)
    async with serving(app) as url, build_worker(dev_client, store, settings, TEST_CATALOG):
        _, key = await app.state.keys.create("default", "tests")
        async with httpx.AsyncClient(
            base_url=url, timeout=30, headers={"Authorization": f"Bearer {key}"}
        ) as http:
            yield Api(url, http, app.state.keys, app.state.changes)


async def send(api: Api, event: str, payload: dict[str, Any], tags: list[str] | None = None) -> str:
    response = await api.http.post(f"/api/events/{event}", json={"payload": payload, "tags": tags or []})
    assert response.status_code == 202, response.text
    run_id: str = response.json()["runs"][0]["run_id"]
    return run_id


async def token_for(api: Api, **scope: Any) -> dict[str, Any]:
    response = await api.http.post("/api/access-tokens", json=scope)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def events_of(
    client: httpx.AsyncClient, url: str, until: Any, limit: float = 60
) -> list[tuple[str, Any]]:
    """Read the server-sent events at ``url`` until ``until(events)`` holds (or the stream ends)."""
    events: list[tuple[str, Any]] = []
    async with asyncio.timeout(limit), client.stream("GET", url) as response:
        assert response.status_code == 200, await response.aread()
        kind = "message"
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[6:])))
                if until(events):
                    break
    return events


async def test_a_run_token_streams_that_run_public_fields_only_and_nothing_else(api: Api) -> None:
    run_id = await send(api, "count.requested", {"steps": 3, "pause_seconds": 0.2}, tags=["user:42"])
    other = await send(api, "count.requested", {"steps": 1, "pause_seconds": 0})
    minted = await token_for(api, run_id=run_id, ttl_seconds=600)
    assert minted["token"].startswith("pat_") and minted["run_id"] == run_id
    assert datetime.fromisoformat(minted["expires_at"]) > datetime.now(UTC) + timedelta(seconds=590)
    token = minted["token"]
    async with api.anonymous() as browser:
        events = await events_of(browser, minted["stream_url"], lambda seen: seen[-1][0] == "end")
        runs = [data for kind, data in events if kind == "run"]
        assert runs[-1]["status"] == "completed" and runs[-1]["progress"] == 100
        assert runs[-1]["input"] is None and runs[-1]["traceparent"] is None  # not shown to a token
        assert runs[-1]["output"] == 3 and runs[-1]["metadata"] == {}
        # The token watches its run, and does nothing else.
        bearer = {"Authorization": f"Bearer {token}"}
        assert (await browser.get(f"/api/runs/{run_id}/stream", headers=bearer)).status_code == 200
        elsewhere = await browser.get(f"/api/runs/{other}/stream", params={"access_token": token})
        assert elsewhere.status_code == 404
        assert (await browser.get(f"/api/runs/{run_id}", headers=bearer)).status_code == 401
        assert (await browser.get("/api/runs", headers=bearer)).status_code == 401
        assert (await browser.post(f"/api/runs/{run_id}/cancel", headers=bearer)).status_code == 401
        by_tag = await browser.get("/api/runs/stream", params={"tag": "user:42", "access_token": token})
        assert (
            by_tag.status_code == 403
            and by_tag.json()["detail"] == f"this access token watches run {run_id} only"
        )


async def test_a_tag_token_streams_the_runs_with_the_tag_including_ones_started_after_it_opened(
    api: Api,
) -> None:
    before = await send(api, "count.requested", {"steps": 1, "pause_seconds": 0}, tags=["user:7"])
    await wait_for_status(api.http, before, "completed")
    minted = await token_for(api, tag="user:7")
    untagged = await send(api, "count.requested", {"steps": 1, "pause_seconds": 0}, tags=["user:8"])
    later: list[str] = []

    async def send_later() -> None:
        await asyncio.sleep(1)
        later.append(
            await send(api, "count.requested", {"steps": 2, "pause_seconds": 0.2}, tags=["user:7", "x"])
        )

    def later_completed(seen: list[tuple[str, Any]]) -> bool:
        return any(data["id"] in later and data["status"] == "completed" for _, data in seen)

    async with api.anonymous() as browser:
        sender = asyncio.create_task(send_later())
        events = await events_of(browser, minted["stream_url"], later_completed)
        await sender
        seen = {data["id"] for _, data in events}
        assert before in seen and later[0] in seen and untagged not in seen
        statuses = [data["status"] for _, data in events if data["id"] == later[0]]
        assert statuses[-1] == "completed" and len(statuses) >= 2  # followed as it went
        refused = await browser.get(
            "/api/runs/stream", params={"tag": "user:8", "access_token": minted["token"]}
        )
        assert refused.status_code == 403 and "tag user:7 only" in refused.json()["detail"]
    # An API key streams any tag of its tenant.
    events = await events_of(api.http, "/api/runs/stream?tag=user:8", lambda seen: bool(seen))
    assert events[0][1]["id"] == untagged and events[0][1]["input"] is not None  # a key sees all


async def test_forged_expired_and_other_tenants_tokens_are_refused(api: Api, settings: Settings) -> None:
    run_id = await send(api, "count.requested", {"steps": 1, "pause_seconds": 0})
    token = (await token_for(api, run_id=run_id))["token"]
    body, signature = token.split(".")
    expired = mint(
        signing_key(settings),
        AccessScope(tenant="default", run_id=run_id, expires_at=datetime.now(UTC) - timedelta(seconds=1)),
    )
    async with api.anonymous() as browser:

        async def status(presented: str) -> tuple[int, str]:
            response = await browser.get(f"/api/runs/{run_id}/stream", params={"access_token": presented})
            return response.status_code, response.json().get("detail", "")

        assert await status(body + "." + signature[::-1]) == (
            401,
            "access token signature does not match: it was not issued here",
        )
        assert await status("pat_garbage") == (401, "malformed access token")
        code, detail = await status(expired)
        assert code == 401 and detail.startswith("access token expired at ")
        # A token is no API key, and an API key is needed to mint one.
        assert (await browser.get(f"/api/runs/{run_id}/stream")).status_code == 401
        assert (await browser.post("/api/access-tokens", json={"run_id": run_id})).status_code == 401
    _, other_key = await api.keys.create("other-tenant", "tests")
    other = {"Authorization": f"Bearer {other_key}"}
    assert (
        await api.http.post("/api/access-tokens", json={"run_id": run_id}, headers=other)
    ).status_code == 404
    assert (await api.http.get(f"/api/runs/{run_id}/stream", headers=other)).status_code == 404


@pytest.mark.parametrize(
    ("asked", "loc"),
    [
        ({}, ["body"]),
        ({"run_id": "run_x", "tag": "user:1"}, ["body"]),
        ({"tag": "has space"}, ["body", "tag"]),
        ({"tag": "user:1", "ttl_seconds": 10}, ["body", "ttl_seconds"]),
        ({"tag": "user:1", "ttl_seconds": 8 * 24 * 3600}, ["body", "ttl_seconds"]),
    ],
)
async def test_bad_token_requests_are_422_naming_the_field(
    api: Api, asked: dict[str, Any], loc: list[str]
) -> None:
    response = await api.http.post("/api/access-tokens", json=asked)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == loc


async def test_streams_answer_cors_for_the_configured_origins_only(api: Api) -> None:
    async with api.anonymous() as browser:
        preflight = await browser.options(
            "/api/runs/stream",
            headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET",
                     "Access-Control-Request-Headers": "authorization"},
        )  # fmt: skip
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        stranger = await browser.options(
            "/api/runs/stream",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in stranger.headers
        # Other endpoints are no realtime surface: no CORS for the realtime origins there.
        listing = await browser.get("/api/runs", headers={"Origin": ORIGIN})
        assert "access-control-allow-origin" not in listing.headers


async def test_the_example_page_shows_a_videos_processing_live_to_completed_from_a_token(
    api: Api, settings: Settings, tmp_path: Path
) -> None:
    source = make_sample(tmp_path / "clip.mp4", width=1280, height=720, seconds=6, quiet=(0.5, 1.0))
    settings.upload_root.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, settings.upload_root / "clip.mp4")
    async with offline_page() as offline:  # the browser first: the page must see the run from its start
        page = offline.page
        payload = {"video_id": "v-live", "user_id": "u-live", "file_path": "clip.mp4"}
        run_id = await send(api, "video.uploaded", payload, tags=["video:v-live"])
        token = (await token_for(api, run_id=run_id))["token"]
        await page.goto(f"{api.url}/examples/realtime.html#run={run_id}&token={token}")
        card = page.locator(f'section.run[data-run="{run_id}"]')
        await card.wait_for(timeout=30_000)
        percents: list[str] = []
        for _ in range(1200):  # watch it advance, without reloading
            percents.append(await card.locator(".percent").inner_text())
            if await card.locator(".status").inner_text() == "completed":
                break
            await asyncio.sleep(0.1)
        assert await card.locator(".status").inner_text() == "completed"
        assert await card.locator("progress").evaluate("bar => bar.value") == 100
        assert len(set(percents)) >= 2  # seen moving, not only finished
        renditions = await card.locator(".renditions li").all_inner_texts()
        assert any(text.startswith("480p: done") for text in renditions), renditions
        assert await page.locator("#connection").inner_text() == "finished"
        await page.screenshot(path=tmp_path / "realtime.png", full_page=True)
        # A bad token: the page says so instead of hanging.
        with contextlib.suppress(Exception):
            await page.goto("about:blank")
        await page.goto(f"{api.url}/examples/realtime.html#run={run_id}&token=pat_forged.00")
        await page.locator("#problem").wait_for(timeout=15_000)
        assert "refused" in await page.locator("#problem").inner_text()
    assert offline.refused == []


async def test_open_streams_share_one_reader_of_changes_and_each_gets_its_runs(api: Api) -> None:
    """Forty streams (of two runs, and of their tags) cost the process one index query a tick, not one
    each; each stream still sees its run's progress move to the end; closed, they cost nothing."""
    runs = {tag: await send(api, "count.requested", {"steps": 12, "pause_seconds": 0.25}, tags=[tag])
            for tag in ("shared:a", "shared:b")}  # fmt: skip
    paths = [f"/api/runs/{run_id}/stream" for run_id in runs.values()] * 10
    paths += [f"/api/runs/stream?tag={tag}" for tag in runs] * 10
    seen: list[list[tuple[str, Any]]] = [[] for _ in paths]

    async def follow(index: int) -> None:
        def done(events: list[tuple[str, Any]]) -> bool:
            seen[index] = events
            return events[-1][0] == "end" or events[-1][1].get("status") == "completed"

        await events_of(api.http, paths[index], done)

    readers = [asyncio.create_task(follow(index)) for index in range(len(paths))]
    for _ in range(200):
        if api.changes.subscribers == len(paths):
            break
        await asyncio.sleep(0.05)
    reads, started = api.changes.reads, asyncio.get_running_loop().time()
    await asyncio.gather(*readers)
    elapsed = asyncio.get_running_loop().time() - started
    assert api.changes.reads - reads <= elapsed / POLL_SECONDS + 4  # one query a tick for all forty
    for events in seen:
        progress = [data["progress"] for kind, data in events if kind == "run"]
        assert len(set(progress)) >= 3 and progress[-1] == 100, progress  # it moved, to the end
    for _ in range(100):
        if api.changes.subscribers == 0:
            break
        await asyncio.sleep(0.05)
    idle = api.changes.reads
    await asyncio.sleep(4 * POLL_SECONDS)
    assert api.changes.subscribers == 0 and api.changes.reads == idle  # nobody follows: no queries
