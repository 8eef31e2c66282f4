"""Tenant schedules made at run time: created once per id, fired through the run queue (its flow control
applies: a paused queue holds the firing's run), changed, paused and deleted in step with Temporal; a cron
in a non-UTC zone follows its DST change; a tenant neither sees nor touches another's; nothing is kept
when Temporal refuses or cannot be reached."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.workflowservice.v1 import ListScheduleMatchingTimesRequest
from temporalio.client import Client, ScheduleActionStartWorkflow
from temporalio.service import RPCError, RPCStatusCode

from longhaul.config import Settings
from longhaul.server.envelopes import TemporalUnavailableError
from longhaul.server.service import RunService
from longhaul.server.tenant_schedules import TenantSchedules
from longhaul.storage import RunStore
from longhaul.storage.schedules import TenantScheduleStore
from longhaul.tenant_schedules import ScheduleRequest
from tests.apps import other_tenant, unreachable_client, wait_for_status
from tests.pipelines import TEST_CATALOG
from tests.postgres import both_databases

pytestmark = both_databases

NIGHTLY = {
    "id": "nightly",
    "event": "hello",
    "payload": {"name": "Nightly"},
    "cron": "0 3 * * *",
    "timezone": "Europe/Paris",
}


async def _runs_of(api: httpx.AsyncClient, schedule: str, count: int) -> list[dict[str, Any]]:
    for _ in range(200):
        params = {"tag": f"schedule:{schedule}", "workflow": "hello"}
        runs = (await api.get("/api/runs", params=params)).json()["runs"]
        if len(runs) >= count:
            return list(runs)
        await asyncio.sleep(0.05)
    raise AssertionError(f"schedule {schedule} made no {count} run(s)")


async def test_a_schedule_is_created_once_per_id_fires_through_the_run_queue_and_changes_in_temporal(
    api: httpx.AsyncClient, dev_client: Client
) -> None:
    created = await api.post("/api/schedules", json=NIGHTLY)
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert (schedule["schedule_id"], schedule["timezone"], schedule["overlap"]) == (
        "tenant/default/nightly", "Europe/Paris", "skip",
    )  # fmt: skip
    assert len(schedule["next_runs"]) == 3
    again = await api.post("/api/schedules", json={**NIGHTLY, "payload": {"name": "Other"}})
    assert again.status_code == 200 and again.json()["payload"] == {"name": "Nightly"}  # the first
    assert [s["id"] for s in (await api.get("/api/schedules")).json()] == ["nightly"]
    described = await dev_client.get_schedule_handle("tenant/default/nightly").describe()
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow) and action.workflow == "tenant-schedule"
    assert described.schedule.spec.time_zone_name == "Europe/Paris"

    # A firing sends the event through the run queue: a paused queue holds its run, saying why.
    paused = await api.post("/api/queues/hello/pause", json={"key": "default", "reason": "hold"})
    assert paused.status_code == 200, paused.text
    assert (await api.post("/api/schedules/nightly/trigger")).status_code == 202
    [run] = await _runs_of(api, "nightly", 1)
    held = await wait_for_status(api, run["id"], "pending")
    assert held["pending_reason"] == "queue hello paused for tenant default: hold"
    assert held["event_id"].startswith("tenant:default:nightly-")
    assert (await api.post("/api/queues/hello/resume", json={"key": "default"})).status_code == 204
    done = await wait_for_status(api, run["id"], "completed")
    assert done["output"] == {"message": "Hello, Nightly!"}
    # The firing waited for the runs it made (the overlap policy is about them), then ended with their ids.
    firing_id = "tenant/default/nightly-" + held["event_id"].removeprefix("tenant:default:nightly-")
    made = await asyncio.wait_for(dev_client.get_workflow_handle(firing_id).result(), timeout=30)
    assert run["id"] in made and len(made) == 2  # hello and its audit

    changed = await api.patch("/api/schedules/nightly", json={"interval_seconds": 3600, "paused": True})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["cron"], body["interval_seconds"], body["paused"]) == (None, 3600, True)
    described = await dev_client.get_schedule_handle("tenant/default/nightly").describe()
    assert described.schedule.state.paused is True
    assert [i.every.total_seconds() for i in described.schedule.spec.intervals] == [3600]
    assert (await api.post("/api/schedules/nightly/unpause")).status_code == 202
    assert (await api.get("/api/schedules/nightly")).json()["paused"] is False

    assert (await api.delete("/api/schedules/nightly")).status_code == 204
    assert (await api.get("/api/schedules/nightly")).status_code == 404
    with pytest.raises(RPCError) as gone:
        await dev_client.get_schedule_handle("tenant/default/nightly").describe()
    assert gone.value.status == RPCStatusCode.NOT_FOUND


async def test_a_tenant_neither_sees_nor_touches_another_tenants_schedules(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    assert (await api.post("/api/schedules", json=NIGHTLY)).status_code == 201
    other = await other_tenant(settings)
    assert (await api.get("/api/schedules", headers=other)).json() == []
    for method, path, body in (
        ("GET", "/api/schedules/nightly", None),
        ("PATCH", "/api/schedules/nightly", {"paused": True}),
        ("DELETE", "/api/schedules/nightly", None),
        ("POST", "/api/schedules/nightly/trigger", None),
        ("POST", "/api/schedules/nightly/pause", None),
    ):
        refused = await api.request(method, path, json=body, headers=other)
        assert refused.status_code == 404, (method, path, refused.text)
    theirs = await api.post("/api/schedules", json=NIGHTLY, headers=other)
    assert theirs.status_code == 201 and theirs.json()["schedule_id"] == "tenant/other-tenant/nightly"
    mine = (await api.get("/api/schedules/nightly")).json()
    assert (mine["tenant"], mine["paused"]) == ("default", False)
    for headers in ({}, other):
        assert (await api.delete("/api/schedules/nightly", headers=headers)).status_code == 204


async def test_a_cron_in_a_non_utc_zone_follows_its_dst_change_and_a_bad_cron_keeps_nothing(
    api: httpx.AsyncClient, dev_client: Client
) -> None:
    morning = {**NIGHTLY, "id": "morning", "cron": "30 9 * * *", "timezone": "America/New_York"}
    assert (await api.post("/api/schedules", json=morning)).status_code == 201
    start, end = Timestamp(), Timestamp()
    start.FromDatetime(datetime(2027, 3, 12, tzinfo=UTC))
    end.FromDatetime(datetime(2027, 3, 16, tzinfo=UTC))
    matching = await dev_client.workflow_service.list_schedule_matching_times(
        ListScheduleMatchingTimesRequest(
            namespace=dev_client.namespace,
            schedule_id="tenant/default/morning",
            start_time=start,
            end_time=end,
        )
    )
    times = [t.ToDatetime(tzinfo=UTC).strftime("%m-%d %H:%M") for t in matching.start_time]
    # 9:30 in New York: 14:30 UTC in winter time, 13:30 UTC once the clocks go forward on 14 March 2027.
    assert times == ["03-12 14:30", "03-13 14:30", "03-14 13:30", "03-15 13:30"]
    assert (await api.delete("/api/schedules/morning")).status_code == 204

    bad = await api.post("/api/schedules", json={**NIGHTLY, "id": "bad", "cron": "61 * * * *"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "cron"]
    assert (await api.get("/api/schedules/bad")).status_code == 404  # nothing half-written


async def test_a_schedule_created_while_temporal_is_down_is_refused_and_keeps_nothing(
    store: RunStore, settings: Settings
) -> None:
    client = await unreachable_client()
    schedules = TenantSchedules(
        RunService(client, store, settings, TEST_CATALOG), TenantScheduleStore(store.db)
    )
    with pytest.raises(TemporalUnavailableError):
        await schedules.create("default", ScheduleRequest.model_validate(NIGHTLY), "key k1")
    assert await schedules.store.get("default", "nightly") is None
