"""Queues controlled while they run: a queue, or one tenant's runs of it, paused and resumed (stored,
admin-only but for a tenant's own runs); the held runs stay pending and say why."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from longhaul.api import create_app
from longhaul.config import Settings
from longhaul.keys import Role
from longhaul.server.envelopes import BatchItem
from longhaul.server.service import RunService
from longhaul.storage import RunStore
from tests.apps import api_client, other_tenant, wait_for_status
from tests.pipelines import TEST_CATALOG
from tests.postgres import both_databases

pytestmark = both_databases


@pytest.fixture
def service(dev_client: Client, store: RunStore, settings: Settings) -> RunService:
    return RunService(dev_client, store, settings, TEST_CATALOG)


async def _send(service: RunService, tenant: str, count: int) -> list[str]:
    tag = uuid.uuid4().hex[:6]
    items = [
        BatchItem.model_validate({"name": "fair.work", "id": f"{tenant}-{tag}-{i}", "payload": {"key": "k"}})
        for i in range(count)
    ]
    return [
        d.run.id for accepted in await service.send_batch(items, tenant=tenant) for d in accepted.deliveries
    ]


async def test_a_paused_queue_holds_its_pending_runs_saying_why_until_resumed(service: RunService) -> None:
    queue = service.queue
    await queue.pause("fair", None, "maintenance window", "key k1")
    held = await _send(service, "tenant-a", 3)
    assert await queue.claim(10) == []
    records = [await service.store.get(run_id) for run_id in held]
    reasons = await queue.reasons([r for r in records if r is not None])
    assert set(reasons.values()) == {"queue fair paused: maintenance window"}
    assert await queue.resume("fair", None)
    assert sorted(run.id for run in await queue.claim(10)) == sorted(held)
    assert not await queue.resume("fair", None)  # not paused any more


async def test_pausing_one_tenants_key_holds_its_runs_and_no_other_tenants(service: RunService) -> None:
    queue = service.queue
    await queue.pause("fair", "tenant-a", None, None)
    await _send(service, "tenant-a", 2)
    others = await _send(service, "tenant-b", 2)
    assert sorted(run.id for run in await queue.claim(10)) == sorted(others)
    [pause] = await queue.pauses("fair")
    assert (pause.key, pause.reason) == ("tenant-a", None)
    await queue.resume("fair", "tenant-a")
    assert {run.tenant for run in await queue.claim(10)} == {"tenant-a"}


async def test_a_tenant_key_pauses_only_its_own_runs_and_an_admin_any_and_pauses_outlive_the_api(
    temporal_address: str, settings: Settings
) -> None:
    async with api_client(create_app(settings, TEST_CATALOG)) as tenant:  # tenant "default"
        own = await tenant.post("/api/queues/fair/pause", json={"key": "default", "reason": "our import"})
        assert own.status_code == 200, own.text
        assert (own.json()["key"], own.json()["reason"]) == ("default", "our import")
        for body in ({"key": "tenant-b"}, {}):  # another tenant's runs, the whole queue
            refused = await tenant.post("/api/queues/fair/pause", json=body)
            assert refused.status_code == 403 and "its own tenant's runs" in refused.text
        unknown = await tenant.post("/api/queues/nope/pause", json={"key": "default"})
        assert unknown.status_code == 404 and "no queue 'nope'" in unknown.text
        bad = await tenant.post("/api/queues/fair/pause", json={"key": "default", "colour": "red"})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "colour"]
    async with api_client(create_app(settings, TEST_CATALOG), "default", Role.ADMIN) as admin:
        assert (await admin.post("/api/queues/fair/pause", json={"key": "tenant-b"})).status_code == 200
        assert (await admin.post("/api/queues/fair/pause", json={"reason": "deploy"})).status_code == 200
        listed = {q["name"]: q for q in (await admin.get("/api/queues")).json()}
        assert [(p["key"], p["reason"]) for p in listed["fair"]["pauses"]] == [
            (None, "deploy"),
            ("default", "our import"),  # kept from the first API process
            ("tenant-b", None),
        ]
        as_default = (await admin.get("/api/queues", headers=await other_tenant(settings, "default"))).json()
        seen = [(p["key"], p["reason"]) for p in _queue(as_default, "fair")["pauses"]]
        assert seen == [(None, "deploy"), ("default", "our import")]  # not tenant-b's
        assert (await admin.post("/api/queues/fair/resume", json={})).status_code == 204
        again = await admin.post("/api/queues/fair/resume", json={})
        assert again.status_code == 404 and "queue 'fair' not paused" in again.text


def _queue(listed: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(queue for queue in listed if queue["name"] == name)


async def test_a_run_held_by_a_pause_starts_once_resumed(api: httpx.AsyncClient) -> None:
    assert (
        await api.post("/api/queues/fair/pause", json={"key": "default", "reason": "hold"})
    ).status_code == 200
    sent = await api.post("/api/events/fair.work", json={"payload": {"key": "k", "seconds": 0}})
    [run] = sent.json()["runs"]
    held = await wait_for_status(api, run["run_id"], "pending")
    assert held["pending_reason"] == "queue fair paused for tenant default: hold"
    assert (await api.post("/api/queues/fair/resume", json={"key": "default"})).status_code == 204
    await wait_for_status(api, run["run_id"], "completed")


async def test_a_limit_set_at_run_time_replaces_the_declared_one_until_cleared(service: RunService) -> None:
    queue, scope = service.queue, "limited-work/default/key=k1"
    items = [
        BatchItem.model_validate(
            {"name": "limited.work", "id": f"l-{uuid.uuid4().hex[:6]}", "payload": {"key": "k1"}}
        )
        for _ in range(4)
    ]
    run_ids = [d.run.id for a in await service.send_batch(items, tenant="default") for d in a.deliveries]
    claimed = {run.id for run in await queue.claim(10)}
    assert len(claimed) == 2  # Concurrency(2, key="key") as declared
    await queue.set_limit(scope, 3, "key k1")
    claimed |= {run.id for run in await queue.claim(10)}
    assert len(claimed) == 3
    [last] = [
        r for r in [await service.store.get(i) for i in run_ids] if r is not None and r.id not in claimed
    ]
    assert await queue.reasons([last]) == {last.id: f"3 of 3 slots of {scope} busy"}
    assert [(o.scope, o.limit) for o in await queue.limits()] == [(scope, 3)]
    assert await queue.clear_limit(scope)
    assert await queue.claim(10) == []  # 3 started, 2 declared
    assert not await queue.clear_limit(scope)


async def test_limits_are_set_and_cleared_by_admin_keys_only_for_their_queues_scopes(
    temporal_address: str, settings: Settings
) -> None:
    body = {"scope": "limited-work/tenant=acme", "limit": 5}
    async with api_client(create_app(settings, TEST_CATALOG)) as tenant:
        assert (await tenant.put("/api/queues/limited-work/limits", json=body)).status_code == 403
    async with api_client(create_app(settings, TEST_CATALOG), "default", Role.ADMIN) as admin:
        answer = await admin.put("/api/queues/limited-work/limits", json=body)
        assert answer.status_code == 200 and answer.json()["limit"] == 5
        rate = {"scope": "rate:limited-work/default/key=k", "limit": 9}
        assert (await admin.put("/api/queues/limited-work/limits", json=rate)).status_code == 200
        foreign = await admin.put("/api/queues/limited-work/limits", json={"scope": "solo/x", "limit": 1})
        assert foreign.status_code == 422 and foreign.json()["detail"][0]["loc"] == ["body", "scope"]
        zero = await admin.put("/api/queues/limited-work/limits", json={**body, "limit": 0})
        assert zero.status_code == 422 and zero.json()["detail"][0]["loc"] == ["body", "limit"]
        listed = _queue((await admin.get("/api/queues")).json(), "limited-work")["limits"]
        assert listed == {"limited-work/tenant=acme": 5, "rate:limited-work/default/key=k": 9}
        cleared = await admin.delete("/api/queues/limited-work/limits/limited-work/tenant=acme")
        assert cleared.status_code == 204
        gone = await admin.delete("/api/queues/limited-work/limits/limited-work/tenant=acme")
        assert gone.status_code == 404
