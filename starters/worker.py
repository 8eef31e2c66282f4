"""The worker process: runs every workflow and activity of the catalog on the configured task queue."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities.hello import compose_greeting
from activities.runs import RunActivities
from longhaul.config import Settings
from longhaul.storage import RunStore
from longhaul.temporal import connect, ensure_search_attributes
from workflows.catalog import CATALOG, Catalog

log = logging.getLogger("longhaul.worker")


def build_worker(
    client: Client,
    store: RunStore,
    settings: Settings,
    catalog: Catalog = CATALOG,
    extra_activities: Sequence[Callable[..., Any]] = (),
) -> Worker:
    """A worker for the catalog's workflows and longhaul's activities (tests build theirs here too)."""
    activities: list[Callable[..., Any]] = [
        compose_greeting,
        RunActivities(store).update_run,
        *extra_activities,
    ]
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=list(catalog.workflows),
        activities=activities,
        max_concurrent_activities=settings.max_concurrent_activities,
        graceful_shutdown_timeout=timedelta(seconds=settings.worker_shutdown_timeout),
    )


async def run_worker(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM, then shut down gracefully: in-flight activities get
    ``worker_shutdown_timeout`` seconds to finish before they are cancelled."""
    store = RunStore(settings.app_database_url)
    await store.create_schema()
    client = await connect(settings)
    await ensure_search_attributes(client)
    worker = build_worker(client, store, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "worker polling task queue %r on %s (namespace %s)",
        settings.task_queue,
        settings.temporal_address,
        client.namespace,
    )
    try:
        async with worker:
            await stop.wait()
            log.info("stopping: in-flight activities get %ss", settings.worker_shutdown_timeout)
    finally:
        await store.close()
    log.info("worker stopped")
