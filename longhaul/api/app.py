"""The API application: its lifespan (the process's store, Temporal client and service), its middleware,
and the routers of :mod:`longhaul.api`. It names no pipeline: events and webhooks come from the catalog."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from longhaul.api import (
    alerts,
    bulk,
    codec,
    events,
    health,
    queues,
    realtime,
    runs,
    schedules,
    streams,
    ui,
    waitpoints,
    webhooks,
)
from longhaul.api.changes import RunChanges
from longhaul.api.errors import add_error_handlers
from longhaul.api.events import IngestLimiter
from longhaul.api.middleware import BodyLimit, PathCORS, SecurityHeaders
from longhaul.api.streams import StreamWatch
from longhaul.config import Settings, load_settings
from longhaul.db import Database
from longhaul.dead_letters import DeadLetters
from longhaul.keys import KeyStore
from longhaul.migrations import prepare
from longhaul.server.dispatcher import dispatching
from longhaul.server.service import RunService
from longhaul.server.tenant_schedules import TenantSchedules
from longhaul.server.waitpoints import WaitpointService
from longhaul.storage import RunStore
from longhaul.storage.schedules import TenantScheduleStore
from longhaul.telemetry import RequestMetrics, runtime, start_tracing, stop_tracing
from longhaul.temporal import connect, ensure_search_attributes, payload_codec
from longhaul.workflows.catalog import Catalog, load_catalog

log = logging.getLogger("longhaul.api")
EXAMPLES = Path(__file__).parent / "examples"


def _lifespan(settings: Settings, catalog: Catalog) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """What the serving process opens on start and closes on stop: storage, the Temporal client, the
    run service, one change poller for every open stream, (unless it runs on its own) the dispatcher,
    and (all in one) the worker, which stops after the dispatcher."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.app_database_url)
        await prepare(db, migrate=settings.migrate_on_start)
        # All in one (`longhaul serve`): the worker needs a connection now; the API alone starts without.
        client = await connect(settings, lazy=not settings.api_worker)
        try:
            await ensure_search_attributes(client)
        except Exception as error:  # Temporal may be down now; the worker registers them too
            log.warning("could not check search attributes yet: %s", error)
        store = RunStore(db)
        app.state.keys = KeyStore(db, cache_seconds=settings.api_key_cache_seconds)
        app.state.dead_letters = DeadLetters(db)
        app.state.limiter = IngestLimiter(settings.ingest_rate_limit, settings.ingest_burst)
        # A worker of the main task queue polls with this client: starts ask for its first task eagerly.
        app.state.service = service = RunService(client, store, settings, catalog, eager=settings.api_worker)
        app.state.waitpoints = WaitpointService(client, store.waitpoints, settings, catalog)
        app.state.tenant_schedules = TenantSchedules(service, TenantScheduleStore(db))
        app.state.changes = RunChanges(store)  # one poller for every open stream
        watcher = asyncio.create_task(app.state.changes.run(), name="longhaul-run-changes")
        app.state.stream_watch = StreamWatch(store.streams)  # one poller for every live data stream
        stream_watcher = asyncio.create_task(app.state.stream_watch.run(), name="longhaul-stream-watch")
        try:
            async with (
                _worker(service) if settings.api_worker else contextlib.nullcontext(),
                app.state.keys.watching(),
                dispatching(service) if settings.api_dispatcher else contextlib.nullcontext() as running,
            ):
                app.state.dispatcher = running  # None where `longhaul dispatcher` runs on its own
                yield
        finally:
            for task in (watcher, stream_watcher):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await db.close()
            stop_tracing(settings)

    return lifespan


def _worker(service: RunService) -> AbstractAsyncContextManager[object]:
    """The worker of an all-in-one process, beside the API and dispatcher, sharing their client,
    storage and service (imported here: the API alone loads no worker)."""
    from longhaul.server.worker import build_worker

    return build_worker(service.client, service.store, service.settings, service.catalog, service=service)


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    """Body limit, metrics, CORS for the codec and the run streams, and security headers (outermost)."""
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if settings.metrics_bind:  # around BodyLimit: refusals are counted too
        app.add_middleware(RequestMetrics, runtime=runtime(settings.metrics_bind))
    app.add_middleware(
        PathCORS,
        pattern=r"/codec/(signed/[^/]+/)?[^/]+",
        origins=settings.codec_cors_origins,
        methods=["POST"],
        headers=["Authorization", "Content-Type", "X-Namespace"],
        credentials=True,  # a Temporal UI with codec.includeCredentials sends the dashboard's cookie
    )
    app.add_middleware(
        PathCORS,
        pattern=r"/api/runs/(stream|[^/]+/stream|[^/]+/streams/[^/]+)",
        origins=settings.realtime_cors_origins,
        methods=["GET"],
        headers=["Authorization", "Last-Event-ID"],
    )
    app.add_middleware(SecurityHeaders, frame_origins=settings.frame_origins)  # outermost: on every answer


def create_app(settings: Settings | None = None, catalog: Catalog | None = None) -> FastAPI:
    """The API application for ``catalog`` (default: the one the settings name). The Temporal client and
    the store are made in the lifespan, i.e. in the serving process on its own event loop (clients do
    not survive a fork)."""
    settings = settings or load_settings()
    catalog = catalog or load_catalog(settings.catalog)
    start_tracing(settings, "longhaul-api")  # before FastAPI(): it traces requests with this provider
    # FastAPI's own /docs and /redoc load their scripts from a CDN; these are served by the app itself.
    app = FastAPIOffline(
        # Exporters are longhaul's settings (LONGHAUL_TRACING), not set up a second time from OTEL_* vars.
        telemetry={"auto_configure": False},
        title="longhaul",
        summary="Durable workflows for long-running processes, on Temporal.",
        version="0.1.0",
        lifespan=_lifespan(settings, catalog),
    )
    app.state.codec = payload_codec(settings)
    _add_middleware(app, settings)
    add_error_handlers(app)
    # Static pages showing how a product uses the API from the browser (served here: no CDN, no build).
    app.mount("/examples", StaticFiles(directory=EXAMPLES, html=True), name="examples")
    app.mount("/ui/static", StaticFiles(directory=ui.STATIC), name="ui-static")
    for router in (
        health.router,
        events.router,
        webhooks.router_for(catalog),
        codec.router,
        schedules.router,
        realtime.router,  # before runs: /api/runs/stream is no run id
        streams.router,
        runs.router,
        bulk.router,
        alerts.router,
        queues.router,
        waitpoints.router,
        ui.router,
    ):
        app.include_router(router)
    return app
