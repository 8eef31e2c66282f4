"""Failure alerts on a real dev server, real SQLite and PostgreSQL, a real worker and a local receiver:
signed webhooks for failed and expired runs and timed-out waitpoints, per tenant and workflow, retried
with backoff, once per run; and the log."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from temporalio.client import Client

from longhaul.alerts import AlertStore
from longhaul.config import Settings
from longhaul.db import Database
from longhaul.server.alerts import SIGNATURE_HEADER
from longhaul.webhooks import verify
from tests.apps import other_tenant, wait_for_status
from tests.postgres import both_databases
from tests.receivers import Received, receiver

pytestmark = both_databases


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The receivers listen on 127.0.0.1, which a deployment must allow (tests/test_egress.py)."""
    return settings.model_copy(update={"alert_private_hosts": ["127.0.0.1"]})


async def destination(api: httpx.AsyncClient, **asked: Any) -> dict[str, Any]:
    response = await api.post("/api/alert-destinations", json=asked)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def send(api: httpx.AsyncClient, event: str, payload: dict[str, Any], **extra: Any) -> str:
    response = await api.post(f"/api/events/{event}", json={"payload": payload, **extra})
    assert response.status_code == 202, response.text
    run_id: str = response.json()["runs"][0]["run_id"]
    return run_id


async def posts(
    received: Received, count: int, limit: float = 60
) -> list[tuple[dict[str, str], dict[str, Any]]]:
    for _ in range(int(limit * 10)):
        if len(received.posts) >= count:
            return received.posts
        await asyncio.sleep(0.1)
    raise AssertionError(f"{count} alert(s) expected, {len(received.posts)} came: {received.posts}")


async def test_a_failed_run_alerts_the_tenants_webhook_signed_with_links_and_the_log(
    api: httpx.AsyncClient, dev_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="longhaul.alerts")
    with receiver() as received:
        hook = await destination(api, url=received.url)
        assert hook["secret"].startswith("whsec_") and hook["kinds"] == [
            "run.failed",
            "run.expired",
            "waitpoint.timed_out",
        ]
        await destination(api, type="log", workflow="gate", kinds=["run.failed"])
        run_id = await send(api, "gate.requested", {"gate": "shut"}, tags=["alerted"])
        failed = await wait_for_status(api, run_id, "failed")
        [(headers, alert)] = await posts(received, 1)
        verify(hook["secret"], headers[SIGNATURE_HEADER], received.raw[0])  # signed like our webhooks
        assert headers["Idempotency-Key"] == f"{hook['id']}/run.failed/{run_id}"
        assert alert["type"] == "run.failed" and alert["tenant"] == "default"
        assert alert["run"]["id"] == run_id and alert["run"]["workflow"] == "gate"
        assert alert["run"]["error"] == failed["error"] and "gate shut is closed" in alert["run"]["error"]
        assert alert["run"]["tags"] == ["alerted"] and alert["waitpoint"] is None
        assert alert["links"]["run"] == f"http://localhost:8000/api/runs/{run_id}"
        workflow_path = quote(failed["workflow_id"], safe="")
        assert alert["links"]["temporal_ui"] == (
            f"http://localhost:8233/namespaces/{dev_client.namespace}/workflows/{workflow_path}"
        )
        for _ in range(100):
            if any("ALERT run.failed" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.1)
        [logged] = [r for r in caplog.records if "ALERT run.failed" in r.getMessage()]
        assert run_id in logged.getMessage() and failed["workflow_id"] in logged.getMessage()
        # Nothing else: a completed run alerts nobody.
        done = await send(api, "count.requested", {"steps": 1, "pause_seconds": 0})
        await wait_for_status(api, done, "completed")
        await asyncio.sleep(1.5)
        assert len(received.posts) == 1


async def test_alerts_go_to_the_runs_tenant_and_workflow_only(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    with receiver() as for_count, receiver() as for_other_tenant, receiver() as for_all:
        await destination(api, url=for_count.url, workflow="count")
        await destination(api, url=for_all.url, kinds=["run.failed"])
        other = await other_tenant(settings)
        response = await api.post(
            "/api/alert-destinations", json={"url": for_other_tenant.url}, headers=other
        )
        assert response.status_code == 201
        assert [d["tenant"] for d in (await api.get("/api/alert-destinations", headers=other)).json()] == [
            "other-tenant"
        ]
        run_id = await send(api, "gate.requested", {"gate": "closed-too"})
        await wait_for_status(api, run_id, "failed")
        await posts(for_all, 1)
        await asyncio.sleep(1.5)
        assert for_count.posts == [] and for_other_tenant.posts == []
        assert all(
            "secret" not in d or d["secret"] is None
            for d in (await api.get("/api/alert-destinations")).json()
        )


async def test_a_webhook_that_fails_is_retried_with_backoff_and_alerted_once(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    with receiver(fail_first=2) as received:
        hook = await destination(api, url=received.url, kinds=["run.failed"])
        run_id = await send(api, "gate.requested", {"gate": "flaky"})
        await wait_for_status(api, run_id, "failed")
        attempts = await posts(received, 3, limit=30)
        assert len({headers["Idempotency-Key"] for headers, _ in attempts}) == 1  # one alert, three tries
        await asyncio.sleep(2)
        assert len(received.posts) == 3
    db = Database(settings.app_database_url)
    try:
        [delivery] = await AlertStore(db).deliveries("default", run_id)
    finally:
        await db.close()
    assert delivery["attempts"] == 3 and delivery["delivered_at"] is not None
    assert delivery["destination_id"] == hook["id"]


async def test_an_expired_run_and_a_timed_out_waitpoint_alert_too(api: httpx.AsyncClient) -> None:
    with receiver() as received:
        await destination(api, url=received.url, kinds=["run.expired", "waitpoint.timed_out"])
        key = f"busy-{uuid.uuid4().hex[:8]}"
        blocker = await send(api, "solo.work", {"key": key, "seconds": 4})
        late = await send(api, "solo.work", {"key": key, "seconds": 0}, options={"ttl": 1})
        await wait_for_status(api, late, "expired")
        review = await send(api, "review.asked", {"document_id": f"doc-{key}", "timeout_seconds": 1})
        await wait_for_status(api, review, "completed")
        alerts = {body["type"]: body for _, body in await posts(received, 2)}
        assert alerts["run.expired"]["run"]["id"] == late
        assert "TTL" in alerts["run.expired"]["run"]["error"]
        timed_out = alerts["waitpoint.timed_out"]
        token = (await api.get(f"/api/runs/{review}")).json()["waitpoints"][0]
        assert timed_out["run"]["id"] == review and timed_out["waitpoint"]["id"] == token["id"]
        assert timed_out["waitpoint"]["kind"] == "test.review"
        await wait_for_status(api, blocker, "completed")


@pytest.mark.parametrize(
    ("asked", "loc"),
    [
        ({"type": "webhook"}, ["body"]),
        ({"type": "log", "url": "http://127.0.0.1:1/x"}, ["body"]),
        ({"url": "not a url"}, ["body", "url"]),
        ({"url": "http://127.0.0.1:1/x", "kinds": ["run.sad"]}, ["body", "kinds", 0]),
        ({"url": "http://127.0.0.1:1/x", "kinds": []}, ["body", "kinds"]),
        ({"url": "http://127.0.0.1:1/x", "workflow": "nope"}, ["body", "workflow"]),
    ],
)
async def test_bad_destinations_are_422_naming_the_field_and_add_nothing(
    api: httpx.AsyncClient, asked: dict[str, Any], loc: list[Any]
) -> None:
    response = await api.post("/api/alert-destinations", json=asked)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == loc
    assert (await api.get("/api/alert-destinations")).json() == []


async def test_a_destination_is_removed_by_its_tenant_only(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    added = await destination(api, type="log")
    other = await other_tenant(settings)
    assert (await api.delete(f"/api/alert-destinations/{added['id']}", headers=other)).status_code == 404
    assert (await api.delete(f"/api/alert-destinations/{added['id']}")).status_code == 204
    assert (await api.get("/api/alert-destinations")).json() == []
    assert (await api.delete(f"/api/alert-destinations/{added['id']}")).status_code == 404
