"""Fair share: the runs of a subscription with ``FairShare`` take turns between tenants (weighted), and
keep their priority order within one tenant; on PostgreSQL two dispatchers share the turns."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import pytest
from temporalio.client import Client

from longhaul.api import create_app
from longhaul.config import Settings
from longhaul.db import Database
from longhaul.keys import Role
from longhaul.models import RunRecord
from longhaul.queue import RunQueue
from longhaul.server.envelopes import BatchItem
from longhaul.server.service import RunService
from longhaul.storage import RunStore
from tests.apps import api_client, other_tenant
from tests.pipelines import FAIR, LIMITED, TEST_CATALOG
from tests.postgres import both_databases


@pytest.fixture
def service(dev_client: Client, store: RunStore, settings: Settings) -> RunService:
    return RunService(dev_client, store, settings, TEST_CATALOG)


async def _send(service: RunService, tenant: str, count: int, event: str = FAIR.name, **options: int) -> None:
    """``count`` events of ``tenant`` in one batch (accepted, none started: no dispatcher runs here)."""
    tag = uuid.uuid4().hex[:6]
    items = [
        BatchItem.model_validate(
            {"name": event, "id": f"{tenant}-{tag}-{i}", "payload": {"key": f"k{i}"}, "options": options}
        )
        for i in range(count)
    ]
    await service.send_batch(items, tenant=tenant)


async def _claim(queue: RunQueue, count: int, per_claim: int = 10) -> list[RunRecord]:
    claimed: list[RunRecord] = []
    while len(claimed) < count:
        batch = await queue.claim(min(per_claim, count - len(claimed)))
        assert batch, f"nothing more to claim after {len(claimed)}"
        claimed += batch
    return claimed


@both_databases
async def test_a_tenant_sending_after_another_tenants_backlog_takes_every_other_turn(
    service: RunService,
) -> None:
    await _send(service, "tenant-a", 200)
    await _send(service, "tenant-b", 10)
    claimed = await _claim(service.queue, 20)
    assert [run.tenant for run in claimed] == ["tenant-a", "tenant-b"] * 10


@both_databases
async def test_a_tenant_back_from_idle_takes_turns_from_now_and_gets_no_burst_for_the_turns_it_missed(
    service: RunService,
) -> None:
    await _send(service, "tenant-a", 100)
    await _send(service, "tenant-b", 2)
    await _claim(service.queue, 60)  # b's two runs early on, then a's alone
    await _send(service, "tenant-b", 10)
    claimed = await _claim(service.queue, 20)
    assert Counter(run.tenant for run in claimed) == {"tenant-a": 10, "tenant-b": 10}


@both_databases
async def test_weights_set_at_runtime_share_the_starts_in_proportion(service: RunService) -> None:
    await _send(service, "tenant-a", 150)
    await _send(service, "tenant-b", 150)
    await service.queue.set_weight("fair", "tenant-a", 3)
    shares = Counter(run.tenant for run in await _claim(service.queue, 100))
    assert shares["tenant-a"] == pytest.approx(75, abs=1)
    assert [(w.key, w.weight) for w in await service.queue.weights("fair")] == [("tenant-a", 3)]
    assert await service.queue.clear_weight("fair", "tenant-a")
    assert await service.queue.weights() == []


@both_databases
async def test_priority_orders_the_runs_of_one_tenant_and_not_the_turns_between_tenants(
    service: RunService,
) -> None:
    await _send(service, "tenant-a", 5, priority=5)
    await _send(service, "tenant-b", 5, priority=5)
    await _send(service, "tenant-a", 2, priority=1)
    claimed = await _claim(service.queue, 6)
    assert [(run.tenant, run.priority) for run in claimed] == [
        ("tenant-a", 1),
        ("tenant-b", 5),
        ("tenant-a", 1),
        ("tenant-b", 5),
        ("tenant-a", 5),
        ("tenant-b", 5),
    ]


@both_databases
async def test_runs_without_fair_share_take_turns_as_one_flow_beside_the_tenants(service: RunService) -> None:
    await _send(service, "tenant-a", 50)
    await _send(service, "tenant-b", 50, event=LIMITED.name)  # no fair share: the rest's one flow
    await _send(service, "tenant-c", 50)
    claimed = await _claim(service.queue, 30)
    assert Counter((run.tenant, run.workflow) for run in claimed) == {
        ("tenant-a", "limited-work"): 10,
        ("tenant-b", "limited-work"): 10,
        ("tenant-c", "limited-work"): 10,
    }


@pytest.mark.parametrize("app_database", ["postgresql"], indirect=True)
async def test_two_dispatchers_on_postgresql_claim_each_run_once_and_keep_the_weights(
    service: RunService, settings: Settings
) -> None:
    for tenant in ("tenant-a", "tenant-b"):
        await _send(service, tenant, 800)
    await service.queue.set_weight("fair", "tenant-a", 2)
    other = Database(settings.app_database_url)
    claimed: list[RunRecord] = []

    async def dispatcher(queue: RunQueue) -> None:
        while len(claimed) < 1000:
            claimed.extend(await queue.claim(10))

    try:
        await asyncio.gather(dispatcher(service.queue), dispatcher(RunQueue(other)))
    finally:
        await other.close()
    assert len({run.id for run in claimed}) == len(claimed)  # none claimed twice
    shares = Counter(run.tenant for run in claimed[:1000])
    assert shares["tenant-a"] / 1000 == pytest.approx(2 / 3, rel=0.1)
    assert shares["tenant-b"] / 1000 == pytest.approx(1 / 3, rel=0.1)


@both_databases
async def test_an_admin_sets_and_clears_a_weight_and_a_tenant_sees_its_own_in_the_queue_list(
    temporal_address: str, settings: Settings, store: RunStore
) -> None:
    app = create_app(settings, TEST_CATALOG)
    async with api_client(app, "default", Role.ADMIN) as admin:
        headers = await other_tenant(settings, "tenant-b")
        set_b = await admin.put("/api/queues/fair/weights/tenant-b", json={"weight": 2.5})
        assert set_b.status_code == 200, set_b.text
        assert set_b.json() == {"queue": "fair", "key": "tenant-b", "weight": 2.5}
        assert (await admin.put("/api/queues/fair/weights/default", json={"weight": 0.5})).status_code == 200
        by_tenant_b = await admin.get("/api/queues", headers=headers)
        assert _queue(by_tenant_b.json(), "fair")["weights"] == {"tenant-b": 2.5}
        assert _queue((await admin.get("/api/queues")).json(), "fair")["weights"] == {
            "default": 0.5,
            "tenant-b": 2.5,
        }
        refused = await admin.put("/api/queues/fair/weights/x", json={"weight": 1}, headers=headers)
        assert refused.status_code == 403
        unknown = await admin.put("/api/queues/nope/weights/x", json={"weight": 1})
        assert unknown.status_code == 404 and "no queue 'nope'" in unknown.text
        unfair = await admin.put("/api/queues/solo/weights/x", json={"weight": 1})
        assert unfair.status_code == 409 and "'solo' has no fair share" in unfair.text
        zero = await admin.put("/api/queues/fair/weights/x", json={"weight": 0})
        assert zero.status_code == 422 and zero.json()["detail"][0]["loc"] == ["body", "weight"]
        assert (await admin.delete("/api/queues/fair/weights/tenant-b")).status_code == 204
        assert (await admin.delete("/api/queues/fair/weights/tenant-b")).status_code == 404
        assert [(w.key, w.weight) for w in await RunQueue(store.db).weights("fair")] == [("default", 0.5)]


def _queue(listed: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(queue for queue in listed if queue["name"] == name)
