"""Several API processes and dispatchers on one PostgreSQL queue: the limits hold across them and no run
is started twice (each API here is its own app with its own connection pool and dispatcher)."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from datetime import datetime

import pytest
from temporalio.client import Client

from longhaul.api import create_app
from longhaul.config import Settings
from longhaul.server.worker import build_worker
from longhaul.storage import RunStore
from tests.apps import api_client, wait_for_status
from tests.pipelines import TEST_CATALOG
from tests.test_queue import _most_at_once

EVENTS, KEYS = 120, 6


@pytest.mark.parametrize("app_database", ["postgresql"], indirect=True)
async def test_two_apis_with_two_dispatchers_keep_the_per_key_limit_and_start_each_run_once(
    temporal_address: str, dev_client: Client, store: RunStore, settings: Settings
) -> None:
    tag = uuid.uuid4().hex[:8]
    apps = [create_app(settings, TEST_CATALOG), create_app(settings, TEST_CATALOG)]
    async with (
        build_worker(dev_client, store, settings, TEST_CATALOG),
        api_client(apps[0]) as first,
        api_client(apps[1]) as second,
    ):
        apis = [first, second]

        async def send(i: int) -> str:
            body = {"id": f"{tag}-{i}", "payload": {"key": f"{tag}-{i % KEYS}", "seconds": 0.1}}
            answer = await apis[i % 2].post("/api/events/limited.work", json=body)
            assert answer.status_code == 202, answer.text
            return str(answer.json()["runs"][0]["run_id"])

        run_ids = await asyncio.gather(*(send(i) for i in range(EVENTS)))
        by_key: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
        for i, run_id in enumerate(run_ids):
            run = await wait_for_status(apis[i % 2], run_id, "completed", limit=240)
            interval = datetime.fromisoformat(run["started_at"]), datetime.fromisoformat(run["finished_at"])
            by_key[run["input"]["key"]].append(interval)
        started = [app.state.dispatcher.started for app in apps]
    assert max(_most_at_once(intervals) for intervals in by_key.values()) == 2
    assert sum(started) == EVENTS, started  # each run started once, by one of the two
    print(f"\nstarts per dispatcher: {started}")
