"""The worker process: the catalog's workflows and light activities on the main task queue, and FFmpeg
jobs on their own task queue with their own concurrency limit, so CPU-bound work never starves others."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.worker import (
    ActivityInboundInterceptor,
    Interceptor,
    Worker,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.events import EmitRequest, EventActivities, InvalidEmitError
from activities.hello import compose_greeting
from activities.maintenance import MaintenanceActivities
from activities.orders import OrderActivities
from activities.payments import PaymentActivities
from activities.runs import ApplyCarriedUpdates, RunActivities
from activities.video import VideoActivities
from longhaul.config import Settings
from longhaul.db import Database
from longhaul.migrations import prepare
from longhaul.order_store import OrderStore
from longhaul.storage import RunStore
from longhaul.telemetry import start_tracing, stop_tracing
from longhaul.temporal import connect, ensure_search_attributes
from longhaul.video_store import VideoStore
from starters.service import EventEnvelope, InvalidInputError, RunService, UnknownEventError
from workflows.catalog import Catalog, load_catalog
from workflows.schedules import SCHEDULED_WORKFLOWS
from workflows.tracking import RunUpdatesInterceptor

log = logging.getLogger("longhaul.worker")

# FFmpeg jobs heartbeat at least this often, so a cancellation reaches them within about a second.
MEDIA_HEARTBEAT_THROTTLE = timedelta(seconds=1)


class WorkerGroup:
    """The workers of one process, run and stopped together, and what they share (closed after them)."""

    def __init__(self, workers: list[Worker], http: httpx.AsyncClient) -> None:
        self.workers = workers
        self.http = http

    async def run(self) -> None:
        try:
            await asyncio.gather(*(worker.run() for worker in self.workers))
        finally:
            await self.http.aclose()

    async def shutdown(self) -> None:
        await asyncio.gather(*(worker.shutdown() for worker in self.workers))

    async def __aenter__(self) -> WorkerGroup:
        for worker in self.workers:
            await worker.__aenter__()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        try:
            await asyncio.gather(*(worker.__aexit__(kind, error, trace) for worker in self.workers))
        finally:
            await self.http.aclose()


class CarryRunUpdates(Interceptor):
    """The workflow side of run records: a workflow hands its queued updates to the header of its next
    activity. All that replaying a workflow needs (tests/test_replay.py)."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return RunUpdatesInterceptor


class RunRecords(CarryRunUpdates):
    """Delivers workflows' run updates with their activities: the workflow side hands queued updates to
    the next activity's header, the activity side applies them before the activity runs."""

    def __init__(self, store: RunStore) -> None:
        self.store = store

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return ApplyCarriedUpdates(next, self.store)


class _CatalogEmitter:
    """Emits a workflow's event as if it were sent to the API: validated, recorded, subscribers started."""

    def __init__(self, service: RunService) -> None:
        self.service = service

    async def __call__(self, request: EmitRequest) -> None:
        envelope = EventEnvelope(id=request.event_id, payload=request.payload)
        try:
            await self.service.send(request.name, envelope, tenant=request.tenant)
        except (InvalidInputError, UnknownEventError) as error:
            raise InvalidEmitError(str(error)) from error


def worker_workflows(catalog: Catalog) -> list[type]:
    """The workflows a worker runs: the catalog's and the scheduled ones."""
    return list(dict.fromkeys([*catalog.workflows, *SCHEDULED_WORKFLOWS]))


def workflow_runner(settings: Settings, workflows: Sequence[type]) -> SandboxedWorkflowRunner:
    """The sandbox the workflows run in.

    The SDK's default ("strict") re-imports a workflow's module and everything it imports that is not
    passed through for every run: module state cannot leak between runs, and calls such as
    ``datetime.now()`` in those modules fail the task. That import is most of a short workflow's worker CPU
    and of a cached workflow's memory (docs/benchmarks.md). "shared" passes longhaul's packages and the
    workflows' own modules through: imported once, shared by every run. They hold no mutable module state,
    and the suite runs strict, so a non-deterministic call in them fails the tests, not production.
    """
    if settings.workflow_sandbox == "strict":
        return SandboxedWorkflowRunner()
    modules = {"workflows", "longhaul", *(workflow.__module__ for workflow in workflows)}
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*modules)
    )


def build_worker(
    client: Client,
    store: RunStore,
    settings: Settings,
    catalog: Catalog | None = None,
    extra_activities: Sequence[Callable[..., Any]] = (),
) -> WorkerGroup:
    """The workers for the catalog's workflows (default: the one the settings name) and longhaul's
    activities (tests build theirs here too)."""
    catalog = catalog or load_catalog(settings.catalog)
    http = httpx.AsyncClient()  # one connection pool for the process's HTTP calls
    videos = VideoStore(store.db)
    video = VideoActivities(settings, store, videos)
    maintenance = MaintenanceActivities(settings, store, videos, client)
    orders = OrderActivities(settings, OrderStore(store.db), http)
    payments = PaymentActivities(settings, http)
    events = EventActivities(_CatalogEmitter(RunService(client, store, settings, catalog)))
    graceful = timedelta(seconds=settings.worker_shutdown_timeout)
    interceptors = [RunRecords(store)]
    workflows = worker_workflows(catalog)
    main = Worker(
        client,
        task_queue=settings.task_queue,
        workflows=workflows,
        workflow_runner=workflow_runner(settings, workflows),
        activities=[
            compose_greeting,
            RunActivities(store).apply_run_updates,
            events.emit_event,
            video.record,
            orders.plan,
            orders.reserve,
            orders.release,
            orders.notify,
            maintenance.expired,
            maintenance.archive,
            maintenance.reconcile,
            *catalog.activities,
            *extra_activities,
        ],
        max_concurrent_activities=settings.max_concurrent_activities,
        max_cached_workflows=settings.max_cached_workflows,
        graceful_shutdown_timeout=graceful,
        interceptors=interceptors,
    )
    media = Worker(
        client,
        task_queue=settings.media_task_queue,
        activities=[video.probe, video.transcode, video.thumbnail, video.analyze],
        max_concurrent_activities=settings.max_concurrent_transcodes,
        max_heartbeat_throttle_interval=MEDIA_HEARTBEAT_THROTTLE,
        default_heartbeat_throttle_interval=MEDIA_HEARTBEAT_THROTTLE,
        graceful_shutdown_timeout=graceful,
        interceptors=interceptors,
    )
    payment_calls = Worker(
        client,
        task_queue=settings.payments_task_queue,
        activities=[payments.charge, payments.refund],
        max_concurrent_activities=settings.payments_concurrency,
        # Enforced by the server across every worker of the queue; all workers must set the same value.
        max_task_queue_activities_per_second=settings.payments_rate_limit,
        graceful_shutdown_timeout=graceful,
        interceptors=interceptors,
    )
    return WorkerGroup([main, media, payment_calls], http)


async def run_worker(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM, then shut down gracefully: in-flight activities get
    ``worker_shutdown_timeout`` seconds to finish before they are cancelled."""
    start_tracing(settings, "longhaul-worker")
    db = Database(settings.app_database_url)
    await prepare(db, migrate=settings.migrate_on_start)
    client = await connect(settings)
    await ensure_search_attributes(client)
    workers = build_worker(client, RunStore(db), settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "worker polling task queues %r, %r and %r on %s (namespace %s)",
        settings.task_queue,
        settings.media_task_queue,
        settings.payments_task_queue,
        settings.temporal_address,
        client.namespace,
    )
    try:
        async with workers:
            await stop.wait()
            log.info("stopping: in-flight activities get %ss", settings.worker_shutdown_timeout)
    finally:
        await db.close()
        stop_tracing(settings)
    log.info("worker stopped")
