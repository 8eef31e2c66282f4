"""The worker process: every workflow of the catalog and the activities its pipelines run on the main task
queue, plus one worker per task queue a pipeline declares for itself (FFmpeg jobs, payment calls) with
that queue's own limits, so CPU-bound or rate-limited work never starves the rest. It names no pipeline."""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any

import httpx
from temporalio import activity
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import (
    ActivityInboundInterceptor,
    Interceptor,
    Worker,
    WorkerDeploymentConfig,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from longhaul.activities.bulk import BulkPage, Outcome
from longhaul.activities.children import CancelChildren, TriggerRequest
from longhaul.activities.events import EmitRequest, InvalidEmitError
from longhaul.activities.resources import Resources
from longhaul.activities.runs import ApplyCarriedUpdates
from longhaul.config import Settings
from longhaul.db import Database
from longhaul.migrations import prepare
from longhaul.models import BulkAction, ChildRun
from longhaul.server.envelopes import (
    ConflictError,
    EventEnvelope,
    InvalidInputError,
    NotFoundError,
    TemporalUnavailableError,
    UnknownEventError,
)
from longhaul.server.resume import resume
from longhaul.server.service import RunService
from longhaul.storage import RunStore
from longhaul.telemetry import start_tracing, stop_tracing
from longhaul.temporal import connect, ensure_search_attributes
from longhaul.workflows.catalog import Catalog, load_catalog
from longhaul.workflows.pipeline import TaskQueue
from longhaul.workflows.steps import activity_name
from longhaul.workflows.tracking import RunUpdatesInterceptor

log = logging.getLogger("longhaul.worker")


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
    """The workflow side of run records and short steps: a workflow hands its queued updates to the
    header of its next activity, and the catalog's ``short_steps`` (activity names) run as local
    activities. All that replaying a workflow needs (tests/test_replay.py)."""

    def __init__(self, short_steps: frozenset[str] = frozenset()) -> None:
        self._workflow_side = RunUpdatesInterceptor.running(short_steps)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return self._workflow_side


class RunRecords(CarryRunUpdates):
    """Delivers workflows' run updates with their activities: the workflow side hands queued updates to
    the next activity's header, the activity side applies them before the activity runs."""

    def __init__(
        self, store: RunStore, short_steps: frozenset[str] = frozenset(), version: str | None = None
    ) -> None:
        super().__init__(short_steps)
        self.store = store
        self.version = version

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return ApplyCarriedUpdates(next, self.store, self.version)


class _ServiceActor:
    """Acts on a run for a bulk action as the API would for one request; a run whose state does not allow
    it is skipped, with the reason."""

    def __init__(self, service: RunService) -> None:
        self.service = service

    async def __call__(self, page: BulkPage, run_id: str) -> tuple[Outcome, str]:
        tenant = page.tenant
        try:
            if page.action == BulkAction.CANCEL:
                cancelled = await self.service.cancel(run_id, tenant=tenant, by=page.by, reason=page.reason)
                return Outcome.DONE, cancelled.status
            if page.action == BulkAction.REPLAY:
                return Outcome.DONE, (await self.service.replay(run_id, tenant=tenant, key=page.key)).id
            return Outcome.DONE, (await resume(self.service, run_id, tenant=tenant)).status
        except (ConflictError, NotFoundError) as refused:
            return Outcome.SKIPPED, str(refused)
        except TemporalUnavailableError:
            raise  # the page is retried once Temporal is back
        except Exception as error:
            return Outcome.FAILED, f"{type(error).__name__}: {error}"


class _CatalogEmitter:
    """Emits a workflow's event as if it were sent to the API: validated, recorded, subscribers started."""

    def __init__(self, service: RunService) -> None:
        self.service = service

    async def __call__(self, request: EmitRequest) -> list[str]:
        envelope = EventEnvelope(id=request.event_id, payload=request.payload, tags=request.tags)
        try:
            accepted = await self.service.send(request.name, envelope, tenant=request.tenant)
        except (InvalidInputError, UnknownEventError) as error:
            raise InvalidEmitError(str(error)) from error
        return [delivery.run.id for delivery in accepted.deliveries]


class _ServiceChildren:
    """Starts and cancels a workflow's child runs (``trigger_and_wait``) through the run service."""

    def __init__(self, service: RunService) -> None:
        self.service = service

    async def trigger(self, request: TriggerRequest) -> list[ChildRun]:
        runs = await self.service.trigger(request)  # what no retry mends: InvalidTriggerError
        return [
            ChildRun(run_id=run.id, workflow=run.workflow, workflow_id=run.workflow_id, status=run.status,
                     output=run.output, error=run.error)
            for run in runs
        ]  # fmt: skip

    async def cancel(self, request: CancelChildren) -> list[str]:
        return await self.service.cancel_children(request)


def deployment_config(settings: Settings) -> WorkerDeploymentConfig | None:
    """The workers' versioning (Worker Deployments, longhaul/server/versions.py): the settings' version,
    every workflow pinned to the version that started it; None: unversioned workers."""
    if settings.worker_deployment is None or settings.worker_build_id is None:
        return None
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(settings.worker_deployment, settings.worker_build_id),
        use_worker_versioning=True,
        default_versioning_behavior=VersioningBehavior.PINNED,
    )


def workflow_runner(settings: Settings, workflows: Sequence[type]) -> SandboxedWorkflowRunner:
    """The sandbox the workflows run in.

    The SDK's default ("strict") re-imports a workflow's module and everything it imports that is not
    passed through for every run: module state cannot leak between runs, and calls such as
    ``datetime.now()`` in those modules fail the task. That import is most of a short workflow's worker CPU
    and of a cached workflow's memory (docs/benchmarks.md). "shared" passes longhaul's package and the
    packages of the workflows' modules through: imported once, shared by every run. They hold no mutable
    module state, and the suite runs strict, so a non-deterministic call in them fails the tests, not
    production.
    """
    if settings.workflow_sandbox == "strict":
        return SandboxedWorkflowRunner()
    modules = {"longhaul", *(workflow.__module__.partition(".")[0] for workflow in workflows)}
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*modules)
    )


def build_worker(
    client: Client,
    store: RunStore,
    settings: Settings,
    catalog: Catalog | None = None,
    *,
    fakes: Mapping[str, Callable[..., Awaitable[Any]]] | None = None,
    service: RunService | None = None,
) -> WorkerGroup:
    """The workers for the catalog's pipelines (default: the catalog the settings name): one on the main
    task queue with every workflow and the pipelines' main-queue activities, and one per task queue a
    pipeline declares for itself, with that queue's limits (tests build theirs here too). ``fakes``
    replace activities by name (the test kit's: a test's stand-in for a payment call). ``service``: the
    process's own, where the worker shares a process with a dispatcher (what its activities emit wakes
    that dispatcher at once)."""
    catalog = catalog or load_catalog(settings.catalog)
    catalog.check_settings(settings)
    http = httpx.AsyncClient()  # one connection pool for the process's HTTP calls
    service = service or RunService(client, store, settings, catalog)
    resources = Resources(
        settings=settings,
        store=store,
        client=client,
        http=http,
        emit=_CatalogEmitter(service),
        act=_ServiceActor(service),
        children=_ServiceChildren(service),
    )
    activities = {
        role: [a for queue in queues for a in queue.activities(resources)]
        for role, queues in catalog.queues.items()
    }
    unknown = set(fakes or {}) - {activity_name(a) for found in activities.values() for a in found}
    if unknown:
        raise ValueError(f"no activity named {', '.join(sorted(unknown))} to replace in this catalog")
    # A local activity runs on the worker of the workflow: a short step must be on the main task queue.
    elsewhere = catalog.short_steps - {activity_name(a) for a in activities.get(None, [])}
    if elsewhere:
        raise ValueError(
            f"short step(s) {', '.join(sorted(elsewhere))} must be activities of the main task queue "
            "(TaskQueue without a role): a local activity runs on the worker of its workflow"
        )
    replaced = _faked(fakes or {})
    workers = [
        _queue_worker(
            client,
            resources,
            role,
            catalog.queues[role],
            catalog.workflows,
            [replaced.get(activity_name(a), a) for a in found],
            catalog.short_steps,
        )
        for role, found in activities.items()
    ]
    return WorkerGroup(workers, http)


def _faked(fakes: Mapping[str, Callable[..., Awaitable[Any]]]) -> dict[str, Callable[..., Any]]:
    """Each fake as an activity of the name it replaces."""
    return {name: activity.defn(name=name)(_plain(fake)) for name, fake in fakes.items()}


def _plain(fake: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """A fresh function around ``fake``, so declaring it an activity leaves the caller's function alone."""

    @functools.wraps(fake)
    async def call(*args: Any) -> Any:
        return await fake(*args)

    return call


def _queue_worker(
    client: Client,
    resources: Resources,
    role: str | None,
    queues: list[TaskQueue],
    workflows: Sequence[type],
    activities: list[Callable[..., Any]],
    short_steps: frozenset[str],
) -> Worker:
    """The worker of one task queue: the main one (``role`` None) runs every workflow with the activities
    pipelines put there; a pipeline's own queue (declared once) runs its activities with its limits."""
    settings = resources.settings
    if role is None:
        options: dict[str, Any] = {
            "workflows": workflows,
            "workflow_runner": workflow_runner(settings, workflows),
            "max_cached_workflows": settings.max_cached_workflows,
            "max_concurrent_activities": settings.max_concurrent_activities,
        }
    else:
        options = _limits(queues[0], settings)
    return Worker(
        client,
        task_queue=settings.task_queue_for(role),
        activities=activities,
        graceful_shutdown_timeout=timedelta(seconds=settings.worker_shutdown_timeout),
        interceptors=[RunRecords(resources.store, short_steps, settings.worker_version)],
        deployment_config=deployment_config(settings),
        **options,
    )


def _limits(queue: TaskQueue, settings: Settings) -> dict[str, Any]:
    """The worker options a pipeline's own task queue declares."""
    options: dict[str, Any] = {
        "max_concurrent_activities": queue.concurrency(settings)
        if queue.concurrency
        else settings.max_concurrent_activities
    }
    if queue.rate_limit is not None:
        # Enforced by the server across every worker of the queue; all workers must set the same value.
        options["max_task_queue_activities_per_second"] = queue.rate_limit(settings)
    if queue.heartbeat_throttle is not None:
        options["max_heartbeat_throttle_interval"] = queue.heartbeat_throttle
        options["default_heartbeat_throttle_interval"] = queue.heartbeat_throttle
    return options


async def run_worker(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM, then shut down gracefully: in-flight activities get
    ``worker_shutdown_timeout`` seconds to finish before they are cancelled."""
    start_tracing(settings, "longhaul-worker")
    db = Database(settings.app_database_url)
    await prepare(db, migrate=settings.migrate_on_start)
    client = await connect(settings)
    await ensure_search_attributes(client)
    catalog = load_catalog(settings.catalog)
    workers = build_worker(client, RunStore(db), settings, catalog)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "worker polling task queues %s on %s (namespace %s)",
        ", ".join(repr(settings.task_queue_for(role)) for role in catalog.queues),
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
