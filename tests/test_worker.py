"""Worker shutdown: in-flight activities finish within the configured grace period."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client, WorkflowHandle

from longhaul.config import Settings
from longhaul.models import RunStatus
from longhaul.storage import RunStore
from starters.service import EventEnvelope, RunService
from starters.worker import build_worker
from tests.pipelines import TEST_ACTIVITIES, TEST_CATALOG


async def test_stopping_worker_lets_an_in_flight_activity_finish(
    dev_client: Client, store: RunStore, settings: Settings
) -> None:
    service = RunService(dev_client, store, settings, TEST_CATALOG)
    graceful = settings.model_copy(update={"worker_shutdown_timeout": 10.0})
    worker = build_worker(dev_client, store, graceful, TEST_CATALOG, TEST_ACTIVITIES)
    running = asyncio.create_task(worker.run())
    accepted = await service.send(
        "sleep.requested", EventEnvelope(payload={"seconds": 1.5}), tenant="default"
    )
    run = accepted.deliveries[0].run
    handle = dev_client.get_workflow_handle(run.workflow_id)
    for _ in range(200):
        if await _busy_in_flight(handle):
            break
        await asyncio.sleep(0.05)
    assert "completed" not in await _busy_activity(handle)

    await worker.shutdown()  # what SIGTERM does in `longhaul worker`
    await running
    assert await _busy_activity(handle) == ["scheduled", "started", "completed"]

    async with build_worker(dev_client, store, settings, TEST_CATALOG, TEST_ACTIVITIES):  # the next worker
        assert await handle.result() == "finished"
    record = await store.get(run.id)
    assert record is not None and record.status == RunStatus.COMPLETED


async def _busy_in_flight(handle: WorkflowHandle[Any, Any]) -> bool:
    pending = (await handle.describe()).raw_description.pending_activities
    return any(
        p.activity_type.name == "busy" and p.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        for p in pending
    )


async def _busy_activity(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """The events of the ``busy`` activity in the workflow's history so far."""
    seen: list[str] = []
    scheduled_id = None
    async for event in handle.fetch_history_events():
        if event.activity_task_scheduled_event_attributes.activity_type.name == "busy":
            scheduled_id = event.event_id
            seen.append("scheduled")
        elif scheduled_id and event.activity_task_started_event_attributes.scheduled_event_id == scheduled_id:
            seen.append("started")
        elif (
            scheduled_id and event.activity_task_completed_event_attributes.scheduled_event_id == scheduled_id
        ):
            seen.append("completed")
    return seen
