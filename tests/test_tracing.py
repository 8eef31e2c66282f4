"""OpenTelemetry tracing: one trace from the API request through the workflow to each activity."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from longhaul.api import create_app
from longhaul.config import Settings
from longhaul.server.worker import build_worker
from longhaul.storage import RunStore
from longhaul.telemetry import start_tracing
from longhaul.temporal import connect
from tests.apps import api_client, wait_for_status


async def test_one_trace_runs_from_the_api_request_through_the_workflow_to_its_activities(
    temporal_address: str, store: RunStore, settings: Settings
) -> None:
    spans = InMemorySpanExporter()
    settings = settings.model_copy(update={"tracing": "console"})
    start_tracing(settings, "longhaul-tests", exporter=spans)
    client = await connect(settings)  # the worker's client: with the SDK's tracing interceptor
    async with api_client(create_app(settings)) as http, build_worker(client, store, settings):
        accepted = await http.post("/api/events/hello", json={"id": "traced-1", "payload": {"name": "Ada"}})
        [run] = accepted.json()["runs"]
        await wait_for_status(http, run["run_id"], "completed")
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    provider.force_flush()

    finished = spans.get_finished_spans()
    [request] = [s for s in finished if s.name == "POST /api/events/{name}"]
    assert request.attributes is not None and request.attributes["http.response.status_code"] == 202
    in_trace = {s.name for s in finished if s.context and s.context.trace_id == request.context.trace_id}
    assert {"StartWorkflow:hello", "RunWorkflow:hello", "RunActivity:compose_greeting"} <= in_trace, in_trace
