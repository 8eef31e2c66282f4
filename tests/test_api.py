"""The HTTP API in process (ASGI), against a real dev server and real SQLite."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from longhaul.api import create_app
from longhaul.binaries import temporal_cli
from longhaul.config import Settings
from longhaul.server.worker import build_worker
from longhaul.storage import RunStore
from longhaul.temporal import SEARCH_ATTRIBUTES, is_unavailable
from tests.apps import api_client, wait_for_status
from tests.postgres import both_databases
from tests.processes import free_port

pytestmark = both_databases


async def test_post_event_returns_202_with_run_and_worker_completes_it(
    temporal_address: str, dev_client: Client, store: RunStore, settings: Settings
) -> None:
    async with api_client(create_app(settings)) as http, build_worker(dev_client, store, settings):
        response = await http.post("/api/events/hello", json={"payload": {"name": "Lin"}})
        assert response.status_code == 202
        body = response.json()
        assert body["event_id"].startswith("evt_")
        [run] = body["runs"]
        assert run["workflow"] == "hello"
        assert run["status_url"] == f"http://api/api/runs/{run['run_id']}"
        record = await wait_for_status(http, run["run_id"], "completed")
        assert record["output"] == {"message": "Hello, Lin!"}
        assert record["progress"] == 100


async def test_health_reports_database_and_temporal(temporal_address: str, settings: Settings) -> None:
    async with api_client(create_app(settings)) as http:
        response = await http.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "temporal": "ok"}


@pytest.mark.parametrize(
    ("name", "body", "status", "needle"),
    [
        ("nope", {"payload": {}}, 404, "known events: cleanup.tenant-due, demo.concurrency"),
        ("hello", {"payload": {}}, 422, '"loc":["body","payload","name"]'),
        ("hello", {"payload": {"name": "x", "colour": "red"}}, 422, '"loc":["body","payload","colour"]'),
        (
            "hello",
            {"payload": {"name": "x", "wait_seconds": -1}},
            422,
            '"loc":["body","payload","wait_seconds"]',
        ),
        ("hello", {"id": "has spaces", "payload": {"name": "x"}}, 422, '"loc":["body","id"]'),
        (
            "video.uploaded",
            {"payload": {"video_id": "v1", "user_id": "u", "file_path": "../../etc/passwd"}},
            422,
            '"loc":["body","payload","file_path"]',
        ),
        (
            "video.uploaded",
            {"payload": {"video_id": "v1", "user_id": "u", "file_path": "/etc/passwd"}},
            422,
            "must be a path inside the upload dir",
        ),
        (
            "video.uploaded",
            {"payload": {"video_id": "../v1", "user_id": "u", "file_path": "v.mp4"}},
            422,
            '"loc":["body","payload","video_id"]',
        ),
    ],
)
async def test_bad_event_is_refused_with_field_path_and_nothing_recorded(
    temporal_address: str,
    settings: Settings,
    store: RunStore,
    name: str,
    body: object,
    status: int,
    needle: str,
) -> None:
    async with api_client(create_app(settings)) as http:
        response = await http.post(f"/api/events/{name}", json=body)
    assert response.status_code == status
    assert needle in response.text
    assert await store.count() == 0


async def test_malformed_json_is_400(temporal_address: str, settings: Settings) -> None:
    async with api_client(create_app(settings)) as http:
        response = await http.post(
            "/api/events/hello", content=b'{"payload": ', headers={"content-type": "application/json"}
        )
    assert response.status_code == 400
    assert response.json() == {"detail": "malformed JSON body"}


async def test_temporal_down_still_accepts_events_into_the_queue_and_health_says_it_is_down(
    settings: Settings, store: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")  # nothing listens on port 1
    async with api_client(create_app(settings)) as http:
        response = await http.post("/api/events/hello", json={"id": "e1", "payload": {"name": "Ada"}})
        health = await http.get("/health")
        assert response.status_code == 202, response.text
        [run] = response.json()["runs"]
        assert run["status"] == "pending"
        await asyncio.sleep(1)  # the dispatcher tries, fails and puts it back
        assert (await http.get(f"/api/runs/{run['run_id']}")).json()["status"] == "pending"
    assert await store.count() == 1
    assert health.status_code == 503
    assert health.json()["database"] == "ok"


async def test_an_event_accepted_while_temporal_is_down_starts_once_it_is_up(
    settings: Settings, store: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{port}")
    body = {"id": "down-then-up", "payload": {"name": "Eve"}}
    async with api_client(create_app(settings)) as http:
        down = await http.post("/api/events/hello", json=body)
        assert down.status_code == 202, down.text
        [run] = down.json()["runs"]

        env = await WorkflowEnvironment.start_local(
            port=port,
            dev_server_existing_path=temporal_cli(),
            data_converter=pydantic_data_converter,
            search_attributes=SEARCH_ATTRIBUTES,
        )
        try:
            async with build_worker(env.client, store, settings):
                again = await http.post("/api/events/hello", json=body)  # a client's retry: the same run
                assert again.json()["runs"][0]["run_id"] == run["run_id"]
                done = await wait_for_status(http, run["run_id"], "completed", limit=60)
        finally:
            await env.shutdown()
    assert done["output"] == {"message": "Hello, Eve!"}
    assert await store.count() == 1


async def test_a_call_that_outlives_its_rpc_timeout_counts_as_temporal_unavailable(
    dev_client: Client,
) -> None:
    """A server too busy to answer in time must be a 503 with Retry-After, not a 500 (seen in a burst).
    The SDK reports its own client-side timeout as CANCELLED "Timeout expired" (what the burst's API log
    showed), or the server answers DEADLINE_EXCEEDED first: both are "unavailable"."""
    with pytest.raises(RPCError) as timed_out:
        await dev_client.workflow_service.get_system_info(
            GetSystemInfoRequest(), timeout=timedelta(microseconds=1)
        )
    assert timed_out.value.status in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED)
    assert is_unavailable(timed_out.value)
    assert is_unavailable(RPCError("Timeout expired", RPCStatusCode.CANCELLED, b""))
    assert not is_unavailable(RPCError("cancelled by the caller", RPCStatusCode.CANCELLED, b""))
