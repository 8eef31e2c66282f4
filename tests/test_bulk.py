"""Bulk actions on a real dev server, real SQLite and PostgreSQL, a real worker: counted with a dry run,
carried out by a bulk-action run whose record tells the progress and outcome."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from longhaul.config import Settings
from longhaul.db import utcnow
from longhaul.server.service import RunService
from longhaul.storage import RunFilter, RunStore
from tests.apps import wait_for_status
from tests.pipelines import EFFECTS, FIXED, TEST_CATALOG
from tests.postgres import both_databases

pytestmark = both_databases


async def send(api: httpx.AsyncClient, event: str, payload: dict[str, Any], tag: str) -> str:
    response = await api.post(f"/api/events/{event}", json={"payload": payload, "tags": [tag]})
    assert response.status_code == 202, response.text
    run_id: str = response.json()["runs"][0]["run_id"]
    return run_id


async def bulk(api: httpx.AsyncClient, **asked: Any) -> dict[str, Any]:
    response = await api.post("/api/bulk-actions", json=asked)
    assert response.status_code == (200 if asked.get("dry_run") else 202), response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_dry_run_counts_and_names_the_matching_runs_and_changes_nothing(
    api: httpx.AsyncClient, store: RunStore
) -> None:
    tag = f"batch:{uuid.uuid4().hex[:6]}"
    failed = [await send(api, "gate.requested", {"gate": f"closed-{i}"}, tag) for i in range(3)]
    done = await send(api, "hello", {"name": "Kept"}, tag)
    for run_id in failed:
        await wait_for_status(api, run_id, "failed")
    await wait_for_status(api, done, "completed")
    before = await store.count()
    answer = await bulk(api, action="replay", filter={"status": "failed", "tag": tag}, dry_run=True)
    assert answer["matched"] == 3 and sorted(answer["sample"]) == sorted(failed)
    assert answer["status"] == "counted" and answer["run"] is None
    assert await store.count() == before  # nothing started, no record of an action
    everything = await bulk(api, action="cancel", filter={"tag": tag}, dry_run=True)
    assert everything["matched"] == 5  # hello starts two runs (fan-out)


async def test_bulk_cancel_stops_every_matching_run_and_its_record_tells_how_it_went(
    api: httpx.AsyncClient,
) -> None:
    tag = f"sleepy:{uuid.uuid4().hex[:6]}"
    waiting = [{"document_id": f"d-{uuid.uuid4().hex[:8]}", "title": "T"} for _ in range(5)]
    sleeping = [await send(api, "approval.requested", payload, tag) for payload in waiting]
    for run_id in sleeping:
        await wait_for_status(api, run_id, "running")
    answer = await bulk(api, action="cancel", filter={"tag": tag}, reason="maintenance window")
    assert answer["matched"] == 5 and answer["status"] == "accepted"
    action = await wait_for_status(api, answer["run"]["run_id"], "completed")
    assert action["workflow"] == "bulk-action" and action["progress"] == 100
    assert action["input"]["reason"] == "maintenance window" and action["input"]["filter"]["tag"] == tag
    assert action["output"]["matched"] == 5 and action["output"]["done"] == 5
    assert action["metadata"]["bulk"] == {"matched": 5, "done": 5, "skipped": 0, "failed": 0}
    assert "100% cancel: 5 of 5 runs" in [line["message"] for line in action["logs"]]
    for run_id in sleeping:
        cancelled = await wait_for_status(api, run_id, "cancelled")
        assert cancelled["error"] == f"cancelled by bulk action {action['id']}: maintenance window"
    # Again: nothing is left to cancel; each run is skipped with the reason.
    again = await bulk(api, action="cancel", filter={"tag": tag})
    repeat = await wait_for_status(api, again["run"]["run_id"], "completed")
    assert repeat["output"]["done"] == 0 and repeat["output"]["skipped"] == 5
    assert set(repeat["output"]["skipped_runs"].values()) == {
        f"run '{run_id}' is cancelled already" for run_id in sleeping
    }
    # The bulk actions are runs themselves: listed like any other.
    listed = (await api.get("/api/runs", params={"workflow": "bulk-action", "tag": "bulk:cancel"})).json()
    assert {answer["run"]["run_id"], again["run"]["run_id"]} <= {run["id"] for run in listed["runs"]}


async def test_bulk_resume_resumes_the_fixed_failed_runs_from_their_failed_step(
    api: httpx.AsyncClient,
) -> None:
    tag = f"fragile:{uuid.uuid4().hex[:6]}"
    keys = [f"bulk-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    runs = [await send(api, "resume.asked", {"key": key}, tag) for key in keys]
    for run_id in runs:
        await wait_for_status(api, run_id, "failed")
    FIXED.update(keys)
    answer = await bulk(api, action="resume", filter={"tag": tag, "status": "failed"})
    action = await wait_for_status(api, answer["run"]["run_id"], "completed")
    assert action["output"]["done"] == 3, action["output"]
    for run_id, key in zip(runs, keys, strict=True):
        done = await wait_for_status(api, run_id, "completed")
        assert done["output"][-1] == f"four:{key}"
        assert [step for step in EFFECTS if step.endswith(key)] == [
            f"one:{key}", f"two:{key}", f"fragile:{key}", f"four:{key}"
        ]  # fmt: skip


async def test_bulk_replay_acts_on_the_runs_of_its_time_range_once_each(
    api: httpx.AsyncClient, store: RunStore, dev_client: Client, settings: Settings
) -> None:
    tag = f"gate:{uuid.uuid4().hex[:6]}"
    early = await send(api, "gate.requested", {"gate": "shut-1"}, tag)
    await wait_for_status(api, early, "failed")
    cut = utcnow()
    late = await send(api, "gate.requested", {"gate": "shut-2"}, tag)
    await wait_for_status(api, late, "failed")
    answer = await bulk(api, action="replay", filter={"tag": tag, "created_before": cut.isoformat()})
    assert answer["matched"] == 1 and answer["sample"] == [early]
    action = await wait_for_status(api, answer["run"]["run_id"], "completed")
    assert action["output"]["done"] == 1
    replays = (await store.page(RunFilter(tenant="default", tag=tag), limit=50)).runs
    assert [run.replay_of for run in replays if run.replay_of] == [early]
    # A page retried after it acted replays nothing twice: the replay is named after the action.
    service = RunService(dev_client, store, settings, TEST_CATALOG)
    first = await service.replay(late, tenant="default", key="bulk-abc")
    second = await service.replay(late, tenant="default", key="bulk-abc")
    assert first.id == second.id


@pytest.mark.parametrize(
    ("asked", "loc"),
    [
        ({"action": "delete"}, ["body", "action"]),
        ({"action": "cancel", "filter": {"status": "sleeping"}}, ["body", "filter", "status"]),
        ({"action": "cancel", "filter": {"tag": "two words"}}, ["body", "filter", "tag"]),
        ({"action": "cancel", "filter": {"created_after": "yesterday"}}, ["body", "filter", "created_after"]),
        ({"action": "cancel", "filter": {"colour": "red"}}, ["body", "filter", "colour"]),
        ({"action": "cancel"}, ["body", "all"]),  # an empty filter is every run: only with "all"
        ({"action": "cancel", "filter": {}, "reason": "oops"}, ["body", "all"]),
        ({"action": "cancel", "all": True, "filter": {"tag": "x"}}, ["body", "all"]),
    ],
)
async def test_bad_bulk_requests_are_422_naming_the_field_and_start_nothing(
    api: httpx.AsyncClient, store: RunStore, asked: dict[str, Any], loc: list[str]
) -> None:
    response = await api.post("/api/bulk-actions", json=asked)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == loc
    assert await store.count() == 0


async def test_an_empty_filter_acts_on_every_run_only_with_all(api: httpx.AsyncClient) -> None:
    tag = f"all:{uuid.uuid4().hex[:6]}"
    waiting = [{"document_id": f"d-{uuid.uuid4().hex[:8]}", "title": "T"} for _ in range(2)]
    runs = [await send(api, "approval.requested", payload, tag) for payload in waiting]
    for run_id in runs:
        await wait_for_status(api, run_id, "running")
    refused = await api.post("/api/bulk-actions", json={"action": "cancel"})
    assert refused.status_code == 422
    assert '"all": true' in refused.json()["detail"][0]["msg"]
    assert (await bulk(api, action="cancel", dry_run=True))["matched"] == 2  # counting needs no "all"
    for run_id in runs:
        assert (await api.get(f"/api/runs/{run_id}")).json()["status"] == "running"
    answer = await bulk(api, action="cancel", all=True)
    assert answer["matched"] == 2
    await wait_for_status(api, answer["run"]["run_id"], "completed")
    for run_id in runs:
        await wait_for_status(api, run_id, "cancelled")
