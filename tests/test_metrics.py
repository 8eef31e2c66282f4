"""Prometheus metrics: one /metrics endpoint per process with the SDK's runtime metrics, the API's request
metrics by route template and status, and run outcomes counted by the workflows (once, never on replay)."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from longhaul.api import create_app
from longhaul.config import Settings
from longhaul.server.worker import build_worker
from longhaul.storage import RunStore
from longhaul.temporal import connect
from tests.apps import api_client, wait_for_status
from tests.processes import free_port


def sample(text: str, name: str, **labels: str) -> float:
    """The value of the sample ``name`` whose labels include ``labels`` (0 if there is none)."""
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and all(f'{key}="{value}"' in match[1] for key, value in labels.items()):
            return float(match[2])
    return 0.0


async def test_api_and_worker_serve_request_sdk_and_run_outcome_metrics(
    temporal_address: str, store: RunStore, settings: Settings
) -> None:
    bind = f"127.0.0.1:{free_port()}"
    settings = settings.model_copy(update={"metrics_bind": bind})
    client = await connect(settings)  # the worker's client: on the runtime that exports at ``bind``
    async with api_client(create_app(settings)) as http, build_worker(client, store, settings):
        accepted = await http.post("/api/events/hello", json={"payload": {"name": "Ada"}})
        [run] = accepted.json()["runs"]
        await wait_for_status(http, run["run_id"], "completed")
        assert (await http.get("/api/runs/run_missing")).status_code == 404
        refused = await http.post("/api/events/hello", json={"payload": {}})
        assert refused.status_code == 422
        async with httpx.AsyncClient() as scraper:
            text = (await scraper.get(f"http://{bind}/metrics")).text

    event = {"method": "POST", "route": "/api/events/{name}"}
    assert sample(text, "longhaul_api_requests", **event, status="202") == 1
    assert sample(text, "longhaul_api_requests", **event, status="422") == 1
    assert sample(text, "longhaul_api_requests", route="/api/runs/{run_id}", status="404") == 1
    assert sample(text, "longhaul_api_request_duration_count", **event) == 2
    assert "run_missing" not in text  # ids never become labels
    outcome = {"workflow_type": "hello", "status": "completed", "task_queue": settings.task_queue}
    assert sample(text, "longhaul_runs_finished", **outcome) == 1
    assert sample(text, "longhaul_run_duration_count", **outcome) == 1
    assert sample(text, "temporal_workflow_completed", workflow_type="hello") >= 1
    final_record = {"activity_type": "apply_run_updates", "workflow_type": "hello"}
    assert sample(text, "temporal_local_activity_execution_latency_count", **final_record) >= 1
    assert sample(text, "longhaul_dispatcher_started") >= 1


def test_metrics_bind_must_be_host_and_port() -> None:
    with pytest.raises(ValueError, match="metrics_bind"):
        Settings(metrics_bind="9464")


async def test_the_run_queue_depth_is_on_metrics_by_queue(temporal_address: str, settings: Settings) -> None:
    bind = f"127.0.0.1:{free_port()}"
    settings = settings.model_copy(update={"metrics_bind": bind})
    async with api_client(create_app(settings)) as http, httpx.AsyncClient() as scraper:
        later = await http.post(
            "/api/events/hello", json={"payload": {"name": "Ada"}, "options": {"delay": 600}}
        )
        assert later.status_code == 202
        for _ in range(100):  # the dispatcher reads the queue's depth every 2 s
            text = (await scraper.get(f"http://{bind}/metrics")).text
            if sample(text, "longhaul_queue_delayed", queue="hello") == 1:
                break
            await asyncio.sleep(0.1)
    assert sample(text, "longhaul_queue_delayed", queue="hello") == 1
    assert sample(text, "longhaul_queue_pending", queue="hello") == 0
    assert "longhaul_queue_oldest_wait_seconds{" in text
