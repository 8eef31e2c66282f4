"""The worker: graceful shutdown (in-flight activities finish within the grace period) and its sandbox."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from longhaul.config import Settings
from longhaul.models import RunStatus
from longhaul.server.envelopes import EventEnvelope
from longhaul.server.service import RunService
from longhaul.server.worker import build_worker, workflow_runner
from longhaul.storage import RunStore
from longhaul.temporal import TASK_QUEUES_MEMO
from tests.dispatching import send_started
from tests.pipelines import TEST_CATALOG, QueueAsked, QueueOfWorkflow
from tests.sandboxed import ModuleImport, WallClock


async def test_stopping_worker_lets_an_in_flight_activity_finish(
    dev_client: Client, store: RunStore, settings: Settings
) -> None:
    service = RunService(dev_client, store, settings, TEST_CATALOG)
    graceful = settings.model_copy(update={"worker_shutdown_timeout": 10.0})
    worker = build_worker(dev_client, store, graceful, TEST_CATALOG)
    running = asyncio.create_task(worker.run())
    accepted = await send_started(
        service, "sleep.requested", EventEnvelope(payload={"seconds": 1.5}), tenant="default"
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

    async with build_worker(dev_client, store, settings, TEST_CATALOG):  # the next worker
        assert await handle.result() == "finished"
    record = await store.get(run.id)
    assert record is not None and record.status == RunStatus.COMPLETED


async def test_a_run_gets_its_pipelines_task_queues_in_its_memo_and_its_activities_run_there(
    dev_client: Client, store: RunStore, settings: Settings
) -> None:
    service = RunService(dev_client, store, settings, TEST_CATALOG)
    async with build_worker(dev_client, store, settings, TEST_CATALOG):
        accepted = await send_started(service, "queue.asked", EventEnvelope(payload={}), tenant="default")
        handle = dev_client.get_workflow_handle(accepted.deliveries[0].run.workflow_id)
        spare = f"{settings.task_queue}-spare"
        assert await handle.result() == [spare, spare]
        assert await (await handle.describe()).memo() == {TASK_QUEUES_MEMO: {"spare": spare}}


async def test_a_workflow_takes_the_queue_name_it_was_given_and_derives_it_only_without_one(
    dev_client: Client, store: RunStore, settings: Settings
) -> None:
    async with build_worker(dev_client, store, settings, TEST_CATALOG):

        async def named(**memo: Any) -> Any:
            return await dev_client.execute_workflow(
                QueueOfWorkflow.run,
                QueueAsked(call=False),
                id=f"queue-of-{uuid.uuid4().hex[:8]}",
                task_queue=settings.task_queue,
                memo=memo or None,
            )

        assert await named(**{TASK_QUEUES_MEMO: {"spare": "elsewhere"}}) == ["elsewhere"]
        assert await named() == [f"{settings.task_queue}-spare"]


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


async def test_shared_sandbox_imports_workflow_modules_once_per_worker(
    dev_client: Client, settings: Settings
) -> None:
    first, second = await _module_of_two_runs(dev_client, settings, "shared")
    assert first == second


async def test_strict_sandbox_imports_workflow_modules_for_every_run(
    dev_client: Client, settings: Settings
) -> None:
    first, second = await _module_of_two_runs(dev_client, settings, "strict")
    assert first != second


async def _module_of_two_runs(client: Client, settings: Settings, sandbox: str) -> list[int]:
    """The identity of the workflow module's token in two runs, one after the other, in ``sandbox``."""
    configured = settings.model_copy(update={"workflow_sandbox": sandbox})
    async with _sandbox_worker(client, configured):
        return [await _run(client, ModuleImport.run, configured) for _ in range(2)]


async def test_strict_sandbox_fails_the_task_of_a_workflow_that_reads_the_wall_clock(
    dev_client: Client, settings: Settings
) -> None:
    strict = settings.model_copy(update={"workflow_sandbox": "strict"})
    async with _sandbox_worker(dev_client, strict):
        handle = await dev_client.start_workflow(
            WallClock.run, id=f"wall-clock-{uuid.uuid4().hex[:8]}", task_queue=strict.task_queue
        )
        failure = None
        for _ in range(100):
            async for event in handle.fetch_history_events():
                if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                    failure = event.workflow_task_failed_event_attributes.failure.message
            if failure:
                break
            await asyncio.sleep(0.1)
        await handle.terminate("test over")
    assert failure is not None and "datetime.datetime.now" in failure


def _sandbox_worker(client: Client, settings: Settings) -> Worker:
    workflows = [ModuleImport, WallClock]
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=workflows,
        workflow_runner=workflow_runner(settings, workflows),
        max_cached_workflows=0,  # every task builds its instance, as after an eviction
    )


async def _run(client: Client, run: Any, settings: Settings) -> Any:
    return await client.execute_workflow(
        run, id=f"sandbox-{uuid.uuid4().hex[:8]}", task_queue=settings.task_queue
    )
