"""Metrics and traces of a longhaul process: Prometheus through the Temporal SDK's own exporter, and
OpenTelemetry traces through the SDK's tracing interceptor. Both are off until configured.

**Metrics.** With ``LONGHAUL_METRICS_BIND`` set (``0.0.0.0:9464``) a process serves
``http://<bind>/metrics``: the SDK's runtime metrics (workflow and activity task latencies,
schedule-to-start, pollers, slots: ``temporal_*``) beside longhaul's own, recorded on the same runtime's
meter: API requests (``longhaul_api_requests``, ``longhaul_api_request_duration`` by method, route
template and status) and run outcomes (``longhaul_runs_finished``, ``longhaul_run_duration`` by workflow
type and status, recorded by the workflows: longhaul/workflows/tracking.py). One exporter per process: no
second HTTP server, no second metrics library.

**Traces.** With ``LONGHAUL_TRACING=otlp`` (the endpoint from the standard ``OTEL_EXPORTER_OTLP_*``
variables) or ``console``, FastAPI traces each API request (a server span, continuing a caller's
``traceparent``); the client's ``StartWorkflow`` span is its child, and the worker continues the trace
(``RunWorkflow``, ``StartActivity``, ``RunActivity``) from the context the SDK carries in workflow and
activity headers: one trace from the HTTP request to each activity. The run queue lies between the request
and the start: the run keeps the request's ``traceparent`` (:func:`current_traceparent`), and the
dispatcher starts its workflow in that context (:func:`continued`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context, propagate
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from longhaul.config import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter
    from temporalio.client import Interceptor

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, if one is being traced."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


@contextlib.contextmanager
def continued(traceparent: str | None) -> Iterator[None]:
    """Run the block in the trace ``traceparent`` names (spans started in it are its children)."""
    if traceparent is None:
        yield
        return
    token = context.attach(propagate.extract({"traceparent": traceparent}))
    try:
        yield
    finally:
        context.detach(token)


@functools.cache
def runtime(metrics_bind: str | None) -> Runtime:
    """The process's SDK runtime: the default one, or one exporting Prometheus metrics at ``metrics_bind``
    (made once per process: it owns the listening socket)."""
    if not metrics_bind:
        return Runtime.default()
    prometheus = PrometheusConfig(bind_address=metrics_bind, durations_as_seconds=True)
    return Runtime(telemetry=TelemetryConfig(metrics=prometheus))


def start_tracing(settings: Settings, service: str, exporter: SpanExporter | None = None) -> None:
    """Install the process's tracer provider (once; ``exporter`` overrides the configured one, for tests).
    ``service`` names the process in the traces unless ``OTEL_SERVICE_NAME`` does. Spans are exported in
    batches: :func:`stop_tracing` flushes them before the process exits."""
    if settings.tracing == "off" and exporter is None:
        return
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return  # installed already (one per process)
    if exporter is None and settings.tracing == "console":
        exporter = ConsoleSpanExporter()
    elif exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    name = os.environ.get("OTEL_SERVICE_NAME", service)
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


def stop_tracing(settings: Settings) -> None:
    """Export what is buffered; the CLI leaves without interpreter teardown, so nothing else would."""
    if settings.tracing == "off":
        return
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.force_flush()


def client_interceptors(settings: Settings) -> list[Interceptor]:
    """The Temporal client's interceptors: the SDK's tracing one when tracing is on (workers made from the
    client use it too)."""
    if settings.tracing == "off":
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


class QueueMetrics:
    """The run queue on ``/metrics``, by queue: ``longhaul_queue_pending`` (due, not started),
    ``longhaul_queue_delayed``, ``longhaul_queue_running`` (started, not closed) and
    ``longhaul_queue_oldest_wait_seconds``; and ``longhaul_dispatcher_started``, the workflows a
    dispatcher started. Recorded by each dispatcher (all of them see the same queue)."""

    def __init__(self, runtime: Runtime) -> None:
        meter = runtime.metric_meter
        self.pending = meter.create_gauge("longhaul_queue_pending", "Runs due but not started.")
        self.delayed = meter.create_gauge("longhaul_queue_delayed", "Runs not due yet.")
        self.running = meter.create_gauge("longhaul_queue_running", "Runs started and not closed.")
        self.oldest = meter.create_gauge_float(
            "longhaul_queue_oldest_wait_seconds", "How long the oldest due run has waited.", "s"
        )
        self.started = meter.create_counter(
            "longhaul_dispatcher_started", "Workflows started by dispatchers."
        )
        self._seen: set[str] = set()

    def record(self, depth: list[Any]) -> None:
        """Set the gauges from :meth:`longhaul.queue.RunQueue.depth` (a queue no longer listed reads 0)."""
        rows = {row.queue: row for row in depth}
        for queue in self._seen | rows.keys():
            row = rows.get(queue)
            labels = {"queue": queue}
            self.pending.set(row.pending if row else 0, labels)
            self.delayed.set(row.delayed if row else 0, labels)
            self.running.set(row.active if row else 0, labels)
            self.oldest.set(row.oldest_wait if row else 0.0, labels)
        self._seen |= rows.keys()


class RequestMetrics:
    """ASGI middleware counting API requests and timing them, by method, route template and status. The
    route is the template (``/api/runs/{run_id}``), not the path, so a label never holds an id. (Request
    spans are FastAPI's own: it traces each request once a tracer provider is installed.)"""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        meter = runtime.metric_meter
        self.requests = meter.create_counter("longhaul_api_requests", "HTTP requests answered by the API.")
        self.duration = meter.create_histogram_float(
            "longhaul_api_request_duration", "Time from request to the end of the response.", "s"
        )

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers if the app raises before responding

        async def send_status(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            labels = {"method": scope["method"], "route": route}
            self.duration.record(time.perf_counter() - started, labels)
            self.requests.add(1, {**labels, "status": str(status)})
