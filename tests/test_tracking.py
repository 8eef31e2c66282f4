"""How run-record updates travel: with the next activity, or by local activity before a wait."""

from __future__ import annotations

import asyncio
import uuid

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from bench.catalog import BENCH_CATALOG
from longhaul.config import Settings
from longhaul.models import RunStatus
from longhaul.server.envelopes import EventEnvelope
from longhaul.server.service import RunService
from longhaul.server.worker import build_worker
from longhaul.storage import RunStore
from tests.dispatching import send_started


async def _markers(handle: WorkflowHandle[object, object]) -> int:
    """Local activities recorded in the workflow's history (one marker each)."""
    history = await handle.fetch_history()
    return sum(e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED for e in history.events)


async def test_progress_travels_with_the_next_activity_and_only_the_final_record_takes_a_local_activity(
    dev_client: Client, store: RunStore, settings: Settings
) -> None:
    service = RunService(dev_client, store, settings, BENCH_CATALOG)
    async with build_worker(dev_client, store, settings, BENCH_CATALOG):
        accepted = await send_started(
            service,
            "bench.steps",
            EventEnvelope(id=f"steps-{uuid.uuid4().hex[:8]}", payload={"item": "x"}),
            tenant="t",
        )
        run = accepted.deliveries[0].run
        handle = dev_client.get_workflow_handle(run.workflow_id)
        assert await handle.result() == "X:FETCHED:stored"

    record = await store.get(run.id)
    assert record is not None and record.status == RunStatus.COMPLETED
    assert [line.message for line in record.logs] == [
        "running (attempt 1)",
        "10% fetching",
        "40% transforming",
        "70% storing",
        "completed",
    ]
    assert await _markers(handle) == 1  # the final record; the rest rode on the three activities


async def test_progress_before_a_wait_is_written_while_the_workflow_waits(
    dev_client: Client, store: RunStore, settings: Settings
) -> None:
    service = RunService(dev_client, store, settings)
    async with build_worker(dev_client, store, settings):
        accepted = await send_started(
            service,
            "hello",
            EventEnvelope(id=f"wait-{uuid.uuid4().hex[:8]}", payload={"name": "W", "wait_seconds": 3}),
            tenant="t",
        )
        run = accepted.deliveries[0].run
        for _ in range(100):  # the timer runs 3 s; the record shows the wait well before it ends
            record = await store.get(run.id)
            assert record is not None
            if record.stage == "waiting 3s":
                break
            await asyncio.sleep(0.02)
        assert record is not None and record.status == RunStatus.RUNNING and record.progress == 10
        await dev_client.get_workflow_handle(run.workflow_id).result()
    done = await store.get(run.id)
    assert done is not None and done.status == RunStatus.COMPLETED
    assert [line.message for line in done.logs][:2] == ["running (attempt 1)", "10% waiting 3s"]


async def test_updates_ride_on_a_local_activity_too(
    dev_client: Client, store: RunStore, settings: Settings
) -> None:
    service = RunService(dev_client, store, settings)
    async with build_worker(dev_client, store, settings):
        accepted = await send_started(
            service,
            "hello",
            EventEnvelope(id=f"la-{uuid.uuid4().hex[:8]}", payload={"name": "L"}),
            tenant="t",
        )
        run = accepted.deliveries[0].run
        handle = dev_client.get_workflow_handle(run.workflow_id)
        await handle.result()
    record = await store.get(run.id)
    assert record is not None
    assert [line.message for line in record.logs] == [
        "running (attempt 1)",
        "50% composing greeting",
        "completed",
    ]
    assert await _markers(handle) == 2  # the greeting (carrying the updates) and the final record
