"""The hello pipeline end to end: ingest → run record → workflow → activities → completed record."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from longhaul.config import Settings
from longhaul.models import RunStatus
from longhaul.server.envelopes import EventEnvelope
from longhaul.server.service import RunService
from longhaul.server.worker import build_worker
from longhaul.storage import RunStore
from longhaul.temporal import EVENT, RUN_ID, TENANT
from tests.dispatching import send_started
from workflows.hello import HelloResult


async def test_hello_event_completes_on_dev_server_with_run_record(
    dev_client: Client, store: RunStore, settings: Settings
) -> None:
    service = RunService(dev_client, store, settings)
    async with build_worker(dev_client, store, settings):
        accepted = await send_started(
            service, "hello", EventEnvelope(id="greet-ada", payload={"name": "Ada"}), tenant="default"
        )
        [delivery] = accepted.deliveries
        run = delivery.run
        assert run.status == RunStatus.PENDING
        handle = dev_client.get_workflow_handle(run.workflow_id, result_type=HelloResult)
        assert await handle.result() == HelloResult(message="Hello, Ada!")

    record = await store.get(run.id)
    assert record is not None
    assert record.status == RunStatus.COMPLETED
    assert record.progress == 100
    assert record.output == {"message": "Hello, Ada!"}
    assert record.started_at is not None and record.finished_at is not None
    assert record.started_at <= record.finished_at
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.COMPLETED
    attributes = description.typed_search_attributes
    assert attributes.get(TENANT) == "default"
    assert attributes.get(EVENT) == "hello"
    assert attributes.get(RUN_ID) == run.id


async def test_hello_wait_is_a_durable_timer_skipped_by_time_skipping_server(
    time_env: WorkflowEnvironment, store: RunStore, settings: Settings
) -> None:
    client = time_env.client
    async with build_worker(client, store, settings):
        handle = await client.start_workflow(
            "hello",
            {"name": "Grace", "greeting": "Hi", "wait_seconds": 3 * 3600},
            id="hello/default/wait-test",
            task_queue=settings.task_queue,
            result_type=HelloResult,
        )
        before = await time_env.get_current_time()
        result = await handle.result()
        skipped = await time_env.get_current_time() - before

    assert result == HelloResult(message="Hi, Grace!")
    assert skipped >= timedelta(hours=3)
    timers = [
        e for e in (await handle.fetch_history()).events if e.HasField("timer_started_event_attributes")
    ]
    assert len(timers) == 1
