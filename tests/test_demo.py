"""The shipped ``demo`` pipeline that docs/events.md's "Try each rule" walks through: each event is held
by its rule as the docs say (real API, dev server, worker, SQLite)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from longhaul.workflows.catalog import Catalog
from tests.apps import wait_for_status
from workflows.catalog import CATALOG


@pytest.fixture
def catalog() -> Catalog:
    return CATALOG


async def send(api: httpx.AsyncClient, event: str, **payload: Any) -> dict[str, Any]:
    response = await api.post(f"/api/events/{event}", json={"payload": payload})
    assert response.status_code == 202, response.text
    [run] = response.json()["runs"]
    return dict(run)


async def test_the_demo_events_are_held_by_their_rules_as_the_docs_show(api: httpx.AsyncClient) -> None:
    edits = [await send(api, "demo.debounce", key="doc-1", note=f"edit {i}", seconds=0) for i in (1, 2, 3)]
    assert [run["via"] for run in edits] == ["start", "debounce", "debounce"]
    assert len({run["run_id"] for run in edits}) == 1 and edits[0]["status"] == "delayed"

    first = await send(api, "demo.singleton", key="user-7", note="click 1", seconds=30)
    second = await send(api, "demo.singleton", key="user-7", note="click 2")
    assert (second["run_id"], second["via"]) == (first["run_id"], "singleton")

    throttled = [await send(api, "demo.throttle", key="user-7", seconds=0) for _ in range(2)]
    limited = [await send(api, "demo.rate-limit", key="user-7", seconds=0) for _ in range(3)]
    one, two = [await send(api, "demo.concurrency", key="user-7", seconds=30) for _ in range(2)]
    await wait_for_status(api, one["run_id"], "running")
    waiting = {
        run["run_id"]: (await api.get(f"/api/runs/{run['run_id']}")).json()["pending_reason"]
        for run in (throttled[1], limited[2], two)
    }
    scope = "default/key=user-7"
    assert waiting == {
        throttled[1]["run_id"]: f"rate limited: 1 start(s) per 5 s of throttle:demo-throttle/{scope}",
        limited[2]["run_id"]: f"rate limited: 2 start(s) per 1 min of rate:demo-rate-limit/{scope}",
        two["run_id"]: f"1 of 1 slots of demo-concurrency/{scope} busy",
    }
    done = await wait_for_status(api, edits[0]["run_id"], "completed", limit=30)
    assert done["output"] == {"key": "doc-1", "note": "edit 3"}  # trailing: the last payload
    queues = {queue["name"]: queue for queue in (await api.get("/api/queues")).json()}
    assert queues["demo-debounce"]["rules"] == ["debounce 5 s per key (trailing)"]
    for run in (first, one, two):
        await api.post(f"/api/runs/{run['run_id']}/cancel")
