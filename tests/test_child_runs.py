"""Trigger and wait: a workflow starts child runs through the run queue (their flow control applies) and
waits for their typed results; children name their parent and root, are listed on the parent's page,
are cancelled with it unless detached, and a child's failure reaches the parent as an error it can
catch. On SQLite and PostgreSQL, with the API's dispatcher and a worker."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import httpx

from longhaul.activities.children import CancelChildren, TriggerRequest
from longhaul.queue.tables import WAITERS
from longhaul.server.service import RunService
from longhaul.storage import RunStore
from tests.apps import wait_for_status
from tests.postgres import both_databases

pytestmark = both_databases


async def _parent(api: httpx.AsyncClient, key: str, **asked: Any) -> str:
    sent = await api.post("/api/events/parent.asked", json={"payload": {"key": key, **asked}})
    assert sent.status_code == 202, sent.text
    return str(sent.json()["runs"][0]["run_id"])


async def _children(api: httpx.AsyncClient, parent: str) -> list[dict[str, Any]]:
    """The parent's children in the order it triggered them (its page's list: ``children_of``)."""
    page = (await api.get("/api/runs", params={"children_of": parent})).json()
    return sorted(page["runs"], key=lambda run: (run["created_at"], run["event_id"]))


async def test_a_child_runs_output_comes_back_typed_and_the_child_names_its_parent_and_root(
    api: httpx.AsyncClient,
) -> None:
    parent = await _parent(api, "ada", mode="hello")
    done = await wait_for_status(api, parent, "completed", "failed")
    assert done["status"] == "completed", done["error"]
    assert done["output"] == ["Hello, ada!"]  # the parent read the child's HelloResult.message
    [child] = await _children(api, parent)
    assert child["workflow"] == "hello" and child["status"] == "completed"
    assert child["parent_run_id"] == parent and child["root_run_id"] == parent
    assert child["event"] == "hello" and child["event_id"].startswith(f"{parent}.child-")


async def test_a_grandchild_names_the_first_run_as_its_root(api: httpx.AsyncClient) -> None:
    top = await _parent(api, "nest", mode="nested", seconds=0)
    done = await wait_for_status(api, top, "completed", "failed")
    assert done["status"] == "completed", done["error"]
    assert done["output"] == ["done nest-inner"]
    [middle] = await _children(api, top)
    [grandchild] = await _children(api, middle["id"])
    assert middle["parent_run_id"] == top and middle["root_run_id"] == top
    assert grandchild["parent_run_id"] == middle["id"] and grandchild["root_run_id"] == top


async def test_a_batch_waits_for_every_child_in_order_through_the_childs_flow_control(
    api: httpx.AsyncClient,
) -> None:
    """Three children of one key, whose subscription runs one at a time per key: they run one after the
    other (the run queue held each until the one before closed); the middle one fails, the others complete,
    and the parent gets each outcome in the order it asked."""
    parent = await _parent(api, "queue", mode="batch", children=3, fail_index=1, seconds=0.3)
    done = await wait_for_status(api, parent, "completed", "failed", limit=60)
    assert done["status"] == "completed", done["error"]
    assert done["output"] == ["done queue", "failed: child queue asked to fail", "done queue"]
    children = await _children(api, parent)
    assert [c["status"] for c in children] == ["completed", "failed", "completed"]
    ran = sorted((c["started_at"], c["finished_at"]) for c in children)
    assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(ran)), ran


async def test_a_failed_child_fails_the_parent_with_its_reason_unless_the_parent_catches_it(
    api: httpx.AsyncClient,
) -> None:
    failing = await _parent(api, "boom", fail=True, seconds=0)
    catching = await _parent(api, "boom2", fail=True, catch=True, seconds=0)
    failed = await wait_for_status(api, failing, "completed", "failed")
    assert failed["status"] == "failed"
    assert "child run" in failed["error"] and "failed: child boom asked to fail" in failed["error"]
    caught = await wait_for_status(api, catching, "completed", "failed")
    assert caught["status"] == "completed", caught["error"]
    assert caught["output"] == ["caught failed: child boom2 asked to fail"]


async def test_cancelling_the_parent_cancels_its_open_children_but_not_detached_ones(
    api: httpx.AsyncClient,
) -> None:
    """Two children of one key, one at a time: the first runs, the second waits in the queue; both are
    cancelled with their parent (the waiting one before it started). A detached child runs on."""
    attached = await _parent(api, "stay", mode="batch", children=2, seconds=30)
    detached = await _parent(api, "free", detached=True, seconds=4)
    for parent in (attached, detached):
        for _ in range(200):
            children = await _children(api, parent)
            if any(child["status"] == "running" for child in children):
                break
            await asyncio.sleep(0.05)
        cancel = await api.post(f"/api/runs/{parent}/cancel", json={"reason": "not needed"})
        assert cancel.status_code == 202, cancel.text
    for parent in (attached, detached):
        assert (await wait_for_status(api, parent, "cancelled"))["status"] == "cancelled"
    both = [await wait_for_status(api, c["id"], "cancelled") for c in await _children(api, attached)]
    ran, waited = sorted(both, key=lambda child: child["started_at"] is None)
    assert f"cancelled by run {attached}: its parent run {attached} was cancelled by" in ran["error"]
    assert waited["started_at"] is None and "before it started" in waited["error"]
    [free] = await _children(api, detached)
    assert (await wait_for_status(api, free["id"], "completed", "cancelled"))["status"] == "completed"


async def test_an_event_with_two_subscribers_is_refused_naming_them_and_nothing_is_started(
    api: httpx.AsyncClient,
) -> None:
    parent = await _parent(api, "two", mode="ambiguous")
    failed = await wait_for_status(api, parent, "completed", "failed")
    assert failed["status"] == "failed"
    assert "'hello' names 2 subscriptions" in failed["error"], failed["error"]
    assert "name the workflow and its event" in failed["error"]
    assert await _children(api, parent) == []


async def test_a_retried_trigger_reaches_the_same_children_and_waits_for_each_once(
    api: httpx.AsyncClient, store: RunStore, catalog: Any, settings: Any, dev_client: Any
) -> None:
    """What a trigger activity retried after a crash does: the same event ids reach the runs the first
    try made, and the parent waits for each once."""
    parent = await _parent(api, "again", seconds=30)
    await wait_for_status(api, parent, "running")
    service = RunService(dev_client, store, settings, catalog)
    request = TriggerRequest(
        parent_run_id=parent, tenant="default", workflow="child-work",
        payloads=[{"key": "x1", "seconds": 30}, {"key": "x2", "seconds": 30}],
        event_ids=[f"{parent}.child-test-1.1", f"{parent}.child-test-1.2"],
    )  # fmt: skip
    first = await service.trigger(request)
    again = await service.trigger(request)
    assert [run.id for run in again] == [run.id for run in first] and len({run.id for run in first}) == 2
    async with store.db.engine.connect() as conn:
        waiting = (await conn.execute(WAITERS.select().where(WAITERS.c.waiter_run_id == parent))).all()
    assert len(waiting) == 3  # the workflow's own child and these two, once each
    stop = CancelChildren(parent_run_id=parent, event_ids=request.event_ids, reason="test over")
    assert sorted(await service.cancel_children(stop)) == sorted(run.id for run in first)
    assert (await api.post(f"/api/runs/{parent}/cancel", json={})).status_code == 202
    await wait_for_status(api, parent, "cancelled")


async def test_a_child_cancelled_before_it_starts_reaches_its_parent_as_a_failure(
    api: httpx.AsyncClient,
) -> None:
    """Closing without ever starting (here: cancelled in the queue while its key's slot is taken) tells
    the parent like any other closing."""
    blocker = await _parent(api, "held", seconds=30)
    [running] = await _wait_children(api, blocker, 1)
    await wait_for_status(api, running["id"], "running")
    waiting_parent = await _parent(api, "held", catch=True, seconds=0)
    [queued] = await _wait_children(api, waiting_parent, 1)
    assert queued["status"] == "pending"
    assert (await api.post(f"/api/runs/{queued['id']}/cancel", json={"reason": "no room"})).status_code == 202
    done = await wait_for_status(api, waiting_parent, "completed", "failed")
    [caught] = done["output"]
    assert caught.startswith("caught cancelled: cancelled by key ") and caught.endswith(
        "no room (before it started)"
    ), caught
    assert (await api.post(f"/api/runs/{blocker}/cancel", json={})).status_code == 202
    await wait_for_status(api, blocker, "cancelled")


async def _wait_children(api: httpx.AsyncClient, parent: str, count: int) -> list[dict[str, Any]]:
    for _ in range(200):
        children = await _children(api, parent)
        if len(children) >= count:
            return children
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {parent} never had {count} child run(s)")
