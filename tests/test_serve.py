"""``longhaul serve``: API, dispatcher and worker in one process serve the README's walkthrough (hello,
an order paid through the local provider and confirmed by its webhook, a ticket), starting runs eagerly,
and a SIGKILL of that one process loses nothing: started again, it finishes the run Temporal kept."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from longhaul.client import Client
from longhaul.models import RunStatus
from tests.processes import LONGHAUL, Process, clean_env, create_key, free_port, wait_until

BOOKS = [{"product_id": "sku-book", "quantity": 2, "price": "42.50"}]


async def _started_eagerly(env: WorkflowEnvironment, workflow_id: str) -> bool:
    """Whether the run's first workflow task was handed to the worker with the start (eager start): the
    server writes the start, the task and its start in one transaction, rather than the task's start
    when a poller takes it."""
    history = await env.client.get_workflow_handle(workflow_id).fetch_history()
    started, scheduled, taken = history.events[:3]
    assert taken.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
    gap = taken.event_time.ToDatetime() - started.event_time.ToDatetime()
    return taken.task_id == scheduled.task_id + 1 == started.task_id + 2 and gap < timedelta(milliseconds=1)


def test_one_process_serves_the_walkthrough_and_a_sigkill_loses_no_run(
    tmp_path: Path, dev_env: WorkflowEnvironment
) -> None:
    # The session's dev server is shared: workflow ids (they derive from order, ticket and event ids) must
    # be this test's own, or a start finds another test's workflow of that id.
    unique = uuid.uuid4().hex[:8]
    api_port, payments_port = free_port(), free_port()
    url = f"http://127.0.0.1:{api_port}"
    env = clean_env(
        TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host,
        LONGHAUL_DATA_DIR=str(tmp_path / "data"),
        LONGHAUL_TASK_QUEUE=f"serve-{uuid.uuid4().hex[:8]}",
        LONGHAUL_WORKER_SHUTDOWN_TIMEOUT="2",
        ORDERS_PAYMENTS_URL=f"http://127.0.0.1:{payments_port}",
    )
    key = create_key(tmp_path, env)
    seed = [LONGHAUL, "orders", "seed"]
    subprocess.run(seed, cwd=tmp_path, env=env, check=True, timeout=60, capture_output=True)
    webhook = f"--webhook-url={url}/api/webhooks/payments"
    payments = Process(["payments", f"--port={payments_port}", webhook], tmp_path, env, tmp_path / "pay.log")
    serve = Process(["serve", f"--port={api_port}"], tmp_path, env, tmp_path / "serve-1.log")
    try:
        payments.wait_for_output("Uvicorn running", 60)
        serve.wait_for_output("Application startup complete", 90)
        with Client(url, api_key=key, retries=10) as longhaul:
            hello = longhaul.send_and_wait("hello", {"name": "Ada"}, timeout=60)
            assert (hello.status, hello.output) == (RunStatus.COMPLETED, {"message": "Hello, Ada!"})
            assert asyncio.run(_started_eagerly(dev_env, hello.workflow_id))
            order = longhaul.send_and_wait(
                "order.created", {"order_id": f"o-{unique}", "user_id": "ann", "items": BOOKS}, timeout=90
            )
            assert order.status == RunStatus.COMPLETED
            assert order.output is not None and order.output["outcome"] == "completed"
            ticket = {"tenant": "default", "ticket_id": f"T-{unique}", "summary": "Charged twice", "body": ""}
            assert longhaul.send_and_wait("ticket.created", ticket, timeout=60).status == RunStatus.COMPLETED

            sleeper = {"name": "Bo", "wait_seconds": 3}
            waiting = longhaul.send_event("hello", sleeper, id=f"killed-{unique}").runs[0]
            running = lambda: longhaul.runs.get(waiting.run_id).status == RunStatus.RUNNING  # noqa: E731
            wait_until(running, 30, "the run on its timer")
            serve.kill()  # API, dispatcher and worker go at once; Temporal keeps the run and its timer
            serve = Process(["serve", f"--port={api_port}"], tmp_path, env, tmp_path / "serve-2.log")
            serve.wait_for_output("Application startup complete", 90)
            survived = longhaul.runs.wait(waiting.run_id, timeout=90)
            assert (survived.status, survived.output) == (RunStatus.COMPLETED, {"message": "Hello, Bo!"})
            assert len(longhaul.runs.list(workflow="hello").runs) == 2  # nothing started twice
    finally:
        serve.stop()
        payments.stop()
    assert "Application shutdown complete" in serve.output  # SIGTERM: worker and dispatcher stopped first
