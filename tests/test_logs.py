"""Structured logs: a line logged while an activity runs carries the run's ids as JSON fields, so an
operator goes from a log line to the run record (run_id) and to the Temporal UI (workflow_id)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from temporalio import activity
from temporalio.client import Client

from longhaul.api import create_app
from longhaul.config import Settings
from longhaul.logs import JsonFormatter
from longhaul.models import run_id_for
from longhaul.server.worker import build_worker
from longhaul.storage import RunStore
from tests.apps import api_client, wait_for_status


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Every record of the SDK's activity logger, formatted as JSON lines."""
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter())
    logger = activity.logger.base_logger
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


async def test_an_activitys_log_line_names_its_run_workflow_and_activity(
    temporal_address: str, dev_client: Client, store: RunStore, settings: Settings, json_lines: io.StringIO
) -> None:
    async with api_client(create_app(settings)) as http, build_worker(dev_client, store, settings):
        accepted = await http.post("/api/events/hello", json={"id": "log-1", "payload": {"name": "Ada"}})
        [run] = accepted.json()["runs"]
        await wait_for_status(http, run["run_id"], "completed")
    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    [greeting] = [line for line in lines if line["message"].startswith("composed greeting")]
    assert greeting["run_id"] == run["run_id"]
    assert greeting["workflow_id"] == "hello/default/log-1"
    assert greeting["workflow_type"] == "hello"
    assert greeting["activity_type"] == "compose_greeting"
    assert greeting["level"] == "info" and greeting["temporal_run_id"]


def test_json_lines_lift_extras_and_exceptions_into_fields() -> None:
    """Outside a workflow or activity, code names the run with ``extra``."""
    log = logging.getLogger("tests.logs")
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter())
    log.addHandler(handler)
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("refused %s", "x", extra={"workflow_id": "order-processing/acme/e1"})
    finally:
        log.removeHandler(handler)
    line = json.loads(lines.getvalue())
    assert (line["message"], line["level"], line["logger"]) == ("refused x", "error", "tests.logs")
    assert line["workflow_id"] == "order-processing/acme/e1"
    assert line["run_id"] == run_id_for("order-processing/acme/e1")
    assert "ValueError: boom" in line["exception"]
