"""One run paused and unpaused: a waiting run held in the queue (not started, saying who paused it), a
started one paused in Temporal (its timer waits), each back on its way once unpaused; a paused run
cancels; a server without workflow pause refuses with a clear 409."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from longhaul.config import Settings
from longhaul.server.envelopes import EventEnvelope
from longhaul.server.pausing import pause_run, unpause_run
from longhaul.server.service import RunService
from longhaul.server.workflow_pause import NotPausableError, pause_workflow
from longhaul.storage import RunStore
from tests.apps import other_tenant, wait_for_status
from tests.pipelines import TEST_CATALOG
from tests.postgres import both_databases


@pytest.fixture
def service(dev_client: Client, store: RunStore, settings: Settings) -> RunService:
    return RunService(dev_client, store, settings, TEST_CATALOG)


async def _send(api: httpx.AsyncClient, seconds: float, **options: Any) -> str:
    body = {"payload": {"key": "k", "seconds": seconds}, "options": options}
    sent = await api.post("/api/events/limited.work", json=body)
    assert sent.status_code == 202, sent.text
    return str(sent.json()["runs"][0]["run_id"])


async def _temporal_status(client: Client, workflow_id: str) -> int:
    request = DescribeWorkflowExecutionRequest(
        namespace=client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)
    )
    described = await client.workflow_service.describe_workflow_execution(request)
    return int(described.workflow_execution_info.status)


@both_databases
async def test_a_paused_waiting_run_is_not_claimed_and_says_who_paused_it_until_unpaused(
    service: RunService,
) -> None:
    accepted = await service.send("limited.work", EventEnvelope(payload={"key": "p1"}), tenant="default")
    run_id = accepted.deliveries[0].run.id
    paused = await pause_run(service, run_id, tenant="default", by="key k1 (API)", reason="supplier late")
    assert paused.status == "pending" and paused.pause_reason == "paused by key k1 (API): supplier late"
    assert paused.paused_at is not None
    assert await pause_run(service, run_id, tenant="default", by="key k2 (API)") == paused  # no change
    assert [run.id for run in await service.queue.claim(10)] == []
    [explained] = await service.explain([paused])
    assert explained.pending_reason == "paused by key k1 (API): supplier late (unpause it to let it start)"
    unpaused = await unpause_run(service, run_id, tenant="default", by="key k1 (API)")
    assert (unpaused.paused_at, unpaused.pause_reason) == (None, None)
    assert [run.id for run in await service.queue.claim(10)] == [run_id]
    logs = [line.message for line in (await service.get(run_id, tenant="default")).logs]
    assert logs[-2:] == ["paused by key k1 (API): supplier late", "unpaused by key k1 (API)"]


@both_databases
async def test_a_delayed_run_paused_through_the_api_stays_pending_past_its_time_then_completes(
    api: httpx.AsyncClient,
) -> None:
    run_id = await _send(api, 0, delay=0.5)
    paused = await api.post(f"/api/runs/{run_id}/pause", json={"reason": "hold"})
    assert paused.status_code == 200, paused.text
    await asyncio.sleep(1.5)  # past its delay: still held
    held = (await api.get(f"/api/runs/{run_id}")).json()
    assert held["status"] == "pending"
    assert held["pending_reason"].endswith(": hold (unpause it to let it start)")
    assert (await api.post(f"/api/runs/{run_id}/unpause")).status_code == 200
    await wait_for_status(api, run_id, "completed")


@both_databases
async def test_a_started_run_is_paused_in_temporal_its_timer_waits_and_it_completes_once_unpaused(
    api: httpx.AsyncClient, dev_client: Client
) -> None:
    run_id = await _send(api, 1.5)
    run = await wait_for_status(api, run_id, "running")
    paused = (await api.post(f"/api/runs/{run_id}/pause", json={"reason": "look first"})).json()
    assert paused["status"] == "running" and paused["pause_reason"].endswith(": look first")
    status = await _temporal_status(dev_client, run["workflow_id"])
    assert status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_PAUSED
    await asyncio.sleep(2.5)  # past its timer: paused, it does not complete
    assert (await api.get(f"/api/runs/{run_id}")).json()["status"] == "running"
    unpaused = await api.post(f"/api/runs/{run_id}/unpause")
    assert unpaused.status_code == 200 and unpaused.json()["paused_at"] is None
    done = await wait_for_status(api, run_id, "completed")
    assert done["output"] == "k"
    again = await api.post(f"/api/runs/{run_id}/pause")
    assert again.status_code == 409 and "only a waiting or started run pauses" in again.text


@both_databases
async def test_a_paused_started_run_cancels_and_is_not_paused_any_more(api: httpx.AsyncClient) -> None:
    run_id = await _send(api, 30)
    await wait_for_status(api, run_id, "running")
    assert (await api.post(f"/api/runs/{run_id}/pause")).status_code == 200
    assert (await api.post(f"/api/runs/{run_id}/cancel", json={"reason": "not needed"})).status_code == 202
    cancelled = await wait_for_status(api, run_id, "cancelled")
    assert cancelled["paused_at"] is None and "not needed" in cancelled["error"]


@both_databases
async def test_pause_refusals_name_the_problem_and_another_tenant_cannot_pause_a_run(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    run_id = await _send(api, 0, delay=60)
    not_paused = await api.post(f"/api/runs/{run_id}/unpause")
    assert not_paused.status_code == 409 and "is not paused" in not_paused.text
    bad = await api.post(f"/api/runs/{run_id}/pause", json={"reason": "x" * 501})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "reason"]
    headers = await other_tenant(settings)
    assert (await api.post(f"/api/runs/{run_id}/pause", headers=headers)).status_code == 404
    assert (await api.get(f"/api/runs/{run_id}")).json()["paused_at"] is None


async def test_a_server_without_workflow_pause_refuses_to_pause_a_started_run(
    time_env: WorkflowEnvironment,
) -> None:
    with pytest.raises(NotPausableError, match="does not pause started workflows"):
        await pause_workflow(time_env.client, "orders/default/o-1", "paused by key k1 (API)")
