"""Waitpoint tokens through the HTTP API, on a real dev server, real SQLite and PostgreSQL, a real worker.

A run waits for its token; the token is completed by API key or by its signed callback URL (no key),
once; a forged URL, another tenant, bad output and late completions get their 4xx and change nothing;
a timeout times the token out, and a completion that reached storage but not the run is not lost.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client

from longhaul.config import Settings
from longhaul.server import waitpoints as waitpoint_service
from longhaul.server.waitpoints import WaitpointService
from longhaul.storage import RunStore
from tests.apps import other_tenant, wait_for_status
from tests.pipelines import TEST_CATALOG
from tests.postgres import both_databases

pytestmark = both_databases


def anonymous(api: httpx.AsyncClient) -> httpx.AsyncClient:
    """A client of the same API that sends no API key (an approver's browser, a third party)."""
    return httpx.AsyncClient(transport=api._transport, base_url=str(api.base_url))


async def ask_review(api: httpx.AsyncClient, document: str, timeout_seconds: float = 60) -> str:
    payload = {"document_id": document, "timeout_seconds": timeout_seconds}
    response = await api.post("/api/events/review.asked", json={"payload": payload})
    assert response.status_code == 202, response.text
    run_id: str = response.json()["runs"][0]["run_id"]
    return run_id


async def waiting_token(api: httpx.AsyncClient, run_id: str, count: int = 1) -> dict[str, Any]:
    """The run's ``count``-th token, once it waits (from the run record)."""
    run: dict[str, Any] = {}
    for _ in range(600):
        run = (await api.get(f"/api/runs/{run_id}")).json()
        tokens = run["waitpoints"]
        if len(tokens) >= count and tokens[count - 1]["status"] == "waiting":
            token: dict[str, Any] = tokens[count - 1]
            return token
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} has no waiting token #{count}: {run}")


async def test_a_run_waits_for_its_token_and_goes_on_with_what_an_api_key_completed_it_with(
    api: httpx.AsyncClient, dev_client: Client
) -> None:
    run_id = await ask_review(api, "doc-1")
    token = await waiting_token(api, run_id)
    assert token["kind"] == "test.review" and token["description"] == "review doc-1"
    assert token["tags"] == ["doc:doc-1"]
    assert token["callback_url"].startswith(f"http://localhost:8000/api/waitpoints/{token['id']}/callback/")
    # The Temporal UI shows the wait and its callback URL in the workflow's current details.
    run = (await api.get(f"/api/runs/{run_id}")).json()
    handle = dev_client.get_workflow_handle(run["workflow_id"])
    details = (
        await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    ).current_details
    assert token["id"] in details and token["callback_url"] in details

    verdict = {"approved": True, "reason": "looks right"}
    response = await api.post(f"/api/waitpoints/{token['id']}/complete", json={"output": verdict})
    assert response.status_code == 200, response.text
    completed = response.json()
    assert completed["status"] == "completed" and completed["output"] == verdict
    assert completed["completed_by"].startswith("key:")

    done = await wait_for_status(api, run_id, "completed")
    [round_] = done["output"]["rounds"]
    assert round_ == {
        "token": token["id"],
        "status": "completed",
        "by": completed["completed_by"],
        "verdict": verdict,
    }
    assert (await api.get(f"/api/waitpoints/{token['id']}")).json()["status"] == "completed"


async def test_a_second_completion_is_409_with_the_first_and_changes_nothing(api: httpx.AsyncClient) -> None:
    run_id = await ask_review(api, "doc-2")
    token = await waiting_token(api, run_id)
    first = {"approved": True, "reason": "first"}
    assert (
        await api.post(f"/api/waitpoints/{token['id']}/complete", json={"output": first})
    ).status_code == 200
    again = await api.post(
        f"/api/waitpoints/{token['id']}/complete", json={"output": {"approved": False, "reason": "second"}}
    )
    assert again.status_code == 409
    assert "completed already" in again.json()["detail"]
    assert again.json()["waitpoint"]["output"] == first
    done = await wait_for_status(api, run_id, "completed")
    assert done["output"]["rounds"][0]["verdict"] == first


async def test_the_callback_url_completes_without_a_key_once_and_a_forged_one_is_403(
    api: httpx.AsyncClient,
) -> None:
    run_id = await ask_review(api, "doc-3")
    token = await waiting_token(api, run_id)
    path = token["callback_url"].removeprefix("http://localhost:8000")
    forged = path[:-4] + ("0000" if not path.endswith("0000") else "1111")
    async with anonymous(api) as outsider:
        refused = await outsider.post(forged, json={"approved": True})
        assert refused.status_code == 403 and "signature does not match" in refused.json()["detail"]
        other = await outsider.post(
            path.replace(token["id"], "wp_000000000000000000000000"), json={"approved": True}
        )
        assert other.status_code == 403  # a signature is for one token only
        assert (await api.get(f"/api/waitpoints/{token['id']}")).json()["status"] == "waiting"

        rejected = await outsider.post(path, json={"approved": False, "reason": "typo on page 2"})
        assert rejected.status_code == 200, rejected.text
        assert rejected.json()["completed_by"] == "callback"
        replayed = await outsider.post(path, json={"approved": True})
        assert replayed.status_code == 409
        assert replayed.json()["waitpoint"]["output"] == {"approved": False, "reason": "typo on page 2"}

        second = await waiting_token(api, run_id, count=2)  # rejected: the run asks again, a new token
        assert second["id"] != token["id"]
        approved = await outsider.post(
            second["callback_url"].removeprefix("http://localhost:8000"), json={"approved": True}
        )
        assert approved.status_code == 200
    done = await wait_for_status(api, run_id, "completed")
    assert [r["verdict"]["approved"] for r in done["output"]["rounds"]] == [False, True]


async def test_bad_output_is_422_naming_the_field_and_the_token_still_waits(api: httpx.AsyncClient) -> None:
    run_id = await ask_review(api, "doc-4")
    token = await waiting_token(api, run_id)
    bad = await api.post(f"/api/waitpoints/{token['id']}/complete", json={"output": {"approved": "perhaps"}})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "output", "approved"]
    async with anonymous(api) as outsider:
        path = token["callback_url"].removeprefix("http://localhost:8000")
        missing = await outsider.post(path, json={"reason": "no verdict"})
        assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == [
            "body",
            "output",
            "approved",
        ]
        not_json = await outsider.post(path, content=b"approved", headers={"Content-Type": "text/plain"})
        assert not_json.status_code == 415
    assert (await api.get(f"/api/waitpoints/{token['id']}")).json()["status"] == "waiting"
    assert (await api.get(f"/api/runs/{run_id}")).json()["status"] == "running"


async def test_another_tenants_token_is_not_found_and_unknown_tokens_are_404(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    run_id = await ask_review(api, "doc-5")
    token = await waiting_token(api, run_id)
    other = await other_tenant(settings)
    assert (await api.get(f"/api/waitpoints/{token['id']}", headers=other)).status_code == 404
    stolen = await api.post(
        f"/api/waitpoints/{token['id']}/complete", json={"output": {"approved": True}}, headers=other
    )
    assert stolen.status_code == 404
    assert (await api.get("/api/waitpoints", headers=other)).json() == []
    assert (await api.get("/api/waitpoints/wp_missing")).status_code == 404
    assert (await api.post("/api/waitpoints/wp_missing/complete", json={"output": {}})).status_code == 404
    assert (await api.get(f"/api/waitpoints/{token['id']}")).json()["status"] == "waiting"


async def test_a_token_nobody_completes_times_out_and_a_late_completion_is_410(
    api: httpx.AsyncClient,
) -> None:
    run_id = await ask_review(api, "doc-6", timeout_seconds=1)
    token = await waiting_token(api, run_id)
    done = await wait_for_status(api, run_id, "completed")
    assert done["output"]["rounds"] == [
        {"token": token["id"], "status": "timed_out", "by": None, "verdict": None}
    ]
    late = await api.post(f"/api/waitpoints/{token['id']}/complete", json={"output": {"approved": True}})
    assert late.status_code == 410 and "timed out" in late.json()["detail"]
    async with anonymous(api) as outsider:
        by_url = await outsider.post(
            token["callback_url"].removeprefix("http://localhost:8000"), json={"approved": True}
        )
        assert by_url.status_code == 410


async def test_a_cancelled_run_cancels_its_waiting_token_which_then_takes_no_completion(
    api: httpx.AsyncClient,
) -> None:
    run_id = await ask_review(api, "doc-7")
    token = await waiting_token(api, run_id)
    assert (await api.post(f"/api/runs/{run_id}/cancel")).status_code == 202
    await wait_for_status(api, run_id, "cancelled")
    assert (await api.get(f"/api/waitpoints/{token['id']}")).json()["status"] == "cancelled"
    late = await api.post(f"/api/waitpoints/{token['id']}/complete", json={"output": {"approved": True}})
    assert late.status_code == 410 and "its run closed" in late.json()["detail"]


async def test_tokens_are_listed_by_status_kind_run_and_tag(api: httpx.AsyncClient) -> None:
    first = await ask_review(api, "doc-8")
    one = await waiting_token(api, first)
    second = await ask_review(api, "doc-9")  # after the first token exists: listed newer
    two = await waiting_token(api, second)
    await api.post(f"/api/waitpoints/{one['id']}/complete", json={"output": {"approved": True}})

    async def ids(**query: str) -> list[str]:
        response = await api.get("/api/waitpoints", params=query)
        assert response.status_code == 200, response.text
        return [token["id"] for token in response.json()]

    assert await ids() == [two["id"], one["id"]]  # newest first
    assert await ids(status="waiting") == [two["id"]]
    assert await ids(status="completed", kind="test.review") == [one["id"]]
    assert await ids(kind="other.kind") == []
    assert await ids(run_id=first) == [one["id"]]
    assert await ids(tag="doc:doc-9") == [two["id"]]
    assert await ids(tag="doc:doc") == []  # a whole tag, not a part of one
    bad = await api.get("/api/waitpoints", params={"status": "done", "limit": "0"})
    assert bad.status_code == 422
    assert {tuple(e["loc"]) for e in bad.json()["detail"]} == {("query", "status"), ("query", "limit")}


async def test_a_completion_that_reached_storage_but_not_the_run_is_delivered_again_or_found_at_timeout(
    api: httpx.AsyncClient,
    store: RunStore,
    dev_client: Client,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Completed in storage with no signal sent (as when Temporal was down at the completion).
    redelivered = await ask_review(api, "doc-10")
    token = await waiting_token(api, redelivered)
    await store.waitpoints.complete(token["id"], {"approved": True, "reason": "redelivered"}, by="tests")
    monkeypatch.setattr(waitpoint_service, "REDELIVER_AFTER", timedelta(0))
    service = WaitpointService(dev_client, store.waitpoints, settings, TEST_CATALOG)
    assert await service.redeliver() == 1
    assert await service.redeliver() == 0  # delivered: not sent again
    done = await wait_for_status(api, redelivered, "completed")
    assert done["output"]["rounds"][0]["verdict"] == {"approved": True, "reason": "redelivered"}

    # Never delivered at all: the run's timer fires, and it takes the completion it finds in storage.
    found = await ask_review(api, "doc-11", timeout_seconds=6)  # time to complete it first, however slow
    token = await waiting_token(api, found)
    _, completed = await store.waitpoints.complete(
        token["id"], {"approved": True, "reason": "found"}, by="tests"
    )
    assert completed
    done = await wait_for_status(api, found, "completed")
    assert done["output"]["rounds"][0] == {
        "token": token["id"],
        "status": "completed",
        "by": "tests",
        "verdict": {"approved": True, "reason": "found"},
    }
