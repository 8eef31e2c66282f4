"""The events core through the HTTP API, on a real dev server, real SQLite and a real worker.

Fan-out, dedupe (also under concurrency), batches, signal routing by key, progress over SSE, cancel,
replay, listing with filters and cursors, and what bad input leaves behind (nothing).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from longhaul.api import create_app
from longhaul.config import Settings
from longhaul.server.worker import build_worker
from longhaul.storage import RunStore
from longhaul.temporal import BUSINESS_KEY, EVENT, RUN_ID, TAGS, TENANT
from tests.apps import api_client, key_id, sse_events, wait_for_status
from tests.pipelines import OPEN_GATES, TEST_CATALOG
from tests.postgres import both_databases

pytestmark = both_databases


async def send(http: httpx.AsyncClient, name: str, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
    response = await http.post(f"/api/events/{name}", json={"payload": payload, **extra})
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_event_fans_out_to_every_subscribed_workflow(api: httpx.AsyncClient) -> None:
    accepted = await send(api, "hello", {"name": "Fan"}, id="fan-1")
    assert [(r["workflow"], r["via"]) for r in accepted["runs"]] == [
        ("hello", "start"),
        ("hello-audit", "start"),
    ]
    hello, audit = [await wait_for_status(api, r["run_id"], "completed") for r in accepted["runs"]]
    assert hello["output"] == {"message": "Hello, Fan!"}
    assert audit["output"] == "audited Fan"
    assert "audited greeting for Fan" in [line["message"] for line in audit["logs"]]
    assert {hello["event_id"], audit["event_id"]} == {"fan-1"}


async def test_same_event_id_returns_same_runs_and_starts_nothing_new(
    api: httpx.AsyncClient, dev_client: Client, store: RunStore
) -> None:
    first = await send(api, "count.requested", {"steps": 1, "pause_seconds": 0}, id="dup-1")
    [run] = first["runs"]
    done = await wait_for_status(api, run["run_id"], "completed")
    temporal_run = (await dev_client.get_workflow_handle(done["workflow_id"]).describe()).run_id

    again = await send(api, "count.requested", {"steps": 1, "pause_seconds": 0}, id="dup-1")
    assert again["runs"] == [{**run, "status": "completed"}]
    assert (await dev_client.get_workflow_handle(done["workflow_id"]).describe()).run_id == temporal_run
    assert await store.count() == 1


async def test_an_event_id_reused_with_another_payload_is_409_naming_the_fields_and_changes_nothing(
    api: httpx.AsyncClient, store: RunStore
) -> None:
    first = await send(api, "hello", {"name": "Ada", "wait_seconds": 0}, id="reused-1")
    reused = await api.post("/api/events/hello", json={"id": "reused-1", "payload": {"name": "Bob"}})
    assert reused.status_code == 409
    detail = reused.json()["detail"]
    assert "event id 'reused-1' was sent before with another payload (differs in: name;" in detail
    assert first["runs"][0]["run_id"] in detail
    batch = await api.post(
        "/api/events",
        json={
            "events": [
                {"name": "hello", "id": "fresh-in-batch", "payload": {"name": "Cy"}},
                {"name": "hello", "id": "reused-1", "payload": {"name": "Ada", "greeting": "Hi"}},
            ]
        },
    )
    assert batch.status_code == 409 and "differs in: greeting" in batch.json()["detail"]
    assert await store.count() == 2  # hello and hello-audit of the first event; the batch started nothing
    again = await send(api, "hello", {"name": "Ada"}, id="reused-1")  # the same payload: the same runs
    assert [r["run_id"] for r in again["runs"]] == [r["run_id"] for r in first["runs"]]


async def test_return_first_keeps_answering_a_reused_event_id_with_the_first_runs(
    temporal_address: str, store: RunStore, settings: Settings
) -> None:
    lenient = settings.model_copy(update={"event_id_reuse": "return_first"})
    async with api_client(create_app(lenient, TEST_CATALOG)) as http:
        first = await send(http, "hello", {"name": "Ada"}, id="lenient-1")
        again = await send(http, "hello", {"name": "Bob"}, id="lenient-1")
    assert [r["run_id"] for r in again["runs"]] == [r["run_id"] for r in first["runs"]]


async def test_twenty_identical_concurrent_requests_make_one_run(
    api: httpx.AsyncClient, dev_client: Client, store: RunStore
) -> None:
    body = {"id": "burst-1", "payload": {"steps": 1, "pause_seconds": 0}}
    responses = await asyncio.gather(*(api.post("/api/events/count.requested", json=body) for _ in range(20)))
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["runs"][0]["run_id"] for r in responses}) == 1
    run = await wait_for_status(api, responses[0].json()["runs"][0]["run_id"], "completed")
    assert await store.count() == 1
    executions = [e async for e in dev_client.list_workflows(f'WorkflowId = "{run["workflow_id"]}"')]
    assert len(executions) == 1


async def test_started_workflows_carry_search_attributes_and_summary(
    api: httpx.AsyncClient, dev_client: Client
) -> None:
    accepted = await send(api, "approval.requested", {"document_id": "doc-sa", "title": "Q3"}, id="sa-1")
    run = await wait_for_status(api, accepted["runs"][0]["run_id"], "running")
    description = await dev_client.get_workflow_handle(run["workflow_id"]).describe()
    attributes = description.typed_search_attributes
    assert attributes.get(TENANT) == "default"
    assert attributes.get(EVENT) == "approval.requested"
    assert attributes.get(RUN_ID) == run["id"]
    assert attributes.get(BUSINESS_KEY) == "doc-sa"
    assert (
        await description.static_summary()
        == f"approval.requested sa-1 → approval ({run['id']}), document_id=doc-sa"
    )
    await api.post(f"/api/runs/{run['id']}/cancel")


async def test_a_runs_tags_are_a_list_search_attribute_the_temporal_ui_can_filter_by(
    api: httpx.AsyncClient, dev_client: Client
) -> None:
    tag = f"video:{uuid.uuid4().hex[:8]}"
    handed = await send(api, "count.requested", {"steps": 1, "pause_seconds": 0}, tags=["user:42", tag])
    claimed = await send(api, "limited.work", {"key": uuid.uuid4().hex, "seconds": 0}, tags=[tag])
    runs = [await wait_for_status(api, a["runs"][0]["run_id"], "completed") for a in (handed, claimed)]
    for run, tags in zip(runs, (["user:42", tag], [tag]), strict=True):
        described = await dev_client.get_workflow_handle(run["workflow_id"]).describe()
        assert described.typed_search_attributes.get(TAGS) == tags
    for _ in range(100):  # visibility is updated behind the start
        found = [e.id async for e in dev_client.list_workflows(f"LonghaulTags = '{tag}'")]
        if len(found) == 2:
            break
        await asyncio.sleep(0.1)
    assert sorted(found) == sorted(run["workflow_id"] for run in runs)


async def test_routed_event_signals_the_running_workflow_found_by_key(api: httpx.AsyncClient) -> None:
    started = await send(api, "approval.requested", {"document_id": "doc-7", "title": "Contract"})
    run_id = started["runs"][0]["run_id"]
    await wait_for_status(api, run_id, "running")

    decided = await send(
        api, "approval.decided", {"document_id": "doc-7", "approved": True, "by": "ann"}, id="d-1"
    )
    assert [(r["run_id"], r["via"]) for r in decided["runs"]] == [(run_id, "signal")]
    done = await wait_for_status(api, run_id, "completed")
    assert done["output"] == {"approved": True, "by": "ann"}


async def test_routed_event_without_a_running_workflow_is_404_and_changes_nothing(
    api: httpx.AsyncClient, store: RunStore
) -> None:
    response = await api.post(
        "/api/events/approval.decided",
        json={"payload": {"document_id": "nope", "approved": False, "by": "bo"}},
    )
    assert response.status_code == 404
    assert response.json() == {
        "detail": "no running approval run with document_id=nope for 'approval.decided'"
    }
    assert await store.count() == 0


async def test_signal_endpoint_validates_the_handler_payload_and_delivers(api: httpx.AsyncClient) -> None:
    run_id = (await send(api, "approval.requested", {"document_id": "doc-8", "title": "T"}))["runs"][0][
        "run_id"
    ]
    await wait_for_status(api, run_id, "running")
    unknown = await api.post(f"/api/runs/{run_id}/signals/approve", json={"payload": {}})
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "approval has no signal 'approve'; its signals: approval.decided"
    invalid = await api.post(
        f"/api/runs/{run_id}/signals/approval.decided", json={"payload": {"document_id": "doc-8", "by": "x"}}
    )
    assert invalid.status_code == 422
    assert invalid.json()["detail"][0]["loc"] == ["body", "payload", "approved"]

    signal = {"id": "decision-1", "payload": {"document_id": "doc-8", "approved": False, "by": "cy"}}
    response = await api.post(f"/api/runs/{run_id}/signals/approval.decided", json=signal)
    assert response.status_code == 202
    assert (await wait_for_status(api, run_id, "completed"))["output"] == {"approved": False, "by": "cy"}
    late = await api.post(f"/api/runs/{run_id}/signals/approval.decided", json=signal)
    assert late.status_code == 409


async def test_stream_sends_progress_until_the_run_completes(api: httpx.AsyncClient) -> None:
    run_id = (await send(api, "count.requested", {"steps": 4, "pause_seconds": 0.4}))["runs"][0]["run_id"]
    response = await api.get(f"/api/runs/{run_id}/stream")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    runs = [data for kind, data in events if kind == "run"]
    progress = [run["progress"] for run in runs]
    assert progress == sorted(progress)
    assert {20, 40, 60} <= set(progress)  # each followed by a pause; 80 may merge into completion
    assert "step 2 of 4" in [run["stage"] for run in runs]
    assert runs[-1]["status"] == "completed" and runs[-1]["progress"] == 100
    assert events[-1] == ("end", {"status": "completed"})


async def test_run_metadata_set_incremented_and_appended_by_the_workflow_streams_to_the_record(
    api: httpx.AsyncClient,
) -> None:
    run_id = (await send(api, "report.requested", {"items": 3}))["runs"][0]["run_id"]
    events = sse_events((await api.get(f"/api/runs/{run_id}/stream")).text)
    seen = [data["metadata"] for kind, data in events if kind == "run"]
    counted = [m.get("counted", 0) for m in seen]
    assert counted == sorted(counted) and {1, 2} <= set(counted)  # live, as the run goes (timers between)
    final = {"phase": "done", "counted": 3, "seen": ["item-0", "item-1", "item-2"]}
    run = await wait_for_status(api, run_id, "completed")
    assert run["metadata"] == final and run["output"] == final


async def test_metadata_past_its_cap_fails_the_run_naming_the_key_and_keeps_what_it_had(
    api: httpx.AsyncClient,
) -> None:
    run_id = (await send(api, "report.requested", {"items": 1, "oversize": True}))["runs"][0]["run_id"]
    run = await wait_for_status(api, run_id, "failed")
    assert "after changing 'blob', over the 65,536-byte limit" in run["error"], run["error"]
    assert run["metadata"] == {"phase": "counting", "counted": 1, "seen": ["item-0"]}
    assert run["attempts"] == 1  # not retried: the same code would fail the same way


async def test_metadata_of_a_declared_shape_is_checked_at_each_change_naming_key_and_field(
    api: httpx.AsyncClient,
) -> None:
    fits = (await send(api, "report.requested", {"items": 2, "typed": True}))["runs"][0]["run_id"]
    done = await wait_for_status(api, fits, "completed")
    assert done["metadata"] == {"phase": "done", "counted": 2, "seen": ["item-0", "item-1"]}
    breaks = (await send(api, "report.requested", {"items": 1, "typed": True, "bad_phase": True}))["runs"]
    run = await wait_for_status(api, breaks[0]["run_id"], "failed")
    assert (
        "run metadata after changing 'phase' does not fit ReportShape: phase: Input should be" in run["error"]
    )
    assert run["metadata"] == {"phase": "counting", "counted": 1, "seen": ["item-0"]}  # as it was
    assert run["attempts"] == 1


async def test_stream_of_unknown_run_is_404(api: httpx.AsyncClient) -> None:
    assert (await api.get("/api/runs/run_missing/stream")).status_code == 404


async def test_cancel_stops_a_waiting_run_and_records_it(api: httpx.AsyncClient) -> None:
    run_id = (await send(api, "approval.requested", {"document_id": "doc-9", "title": "T"}))["runs"][0][
        "run_id"
    ]
    await wait_for_status(api, run_id, "running")
    response = await api.post(f"/api/runs/{run_id}/cancel", json={"reason": "the document was withdrawn"})
    assert response.status_code == 202
    cancelled = await wait_for_status(api, run_id, "cancelled")
    assert cancelled["finished_at"] is not None
    why = f"cancelled by key {key_id(api)} (API): the document was withdrawn"  # who, and why
    assert cancelled["error"] == why and cancelled["logs"][-1]["message"] == why
    assert f"{why} (asked; the run stops after its cleanup)" in [
        line["message"] for line in cancelled["logs"]
    ]
    again = await api.post(f"/api/runs/{run_id}/cancel")
    assert again.status_code == 409
    assert again.json() == {"detail": f"run '{run_id}' is cancelled already"}


async def test_failed_run_replays_with_same_input_as_a_linked_run(api: httpx.AsyncClient) -> None:
    run_id = (await send(api, "gate.requested", {"gate": "g1"}, tags=["nightly"]))["runs"][0]["run_id"]
    failed = await wait_for_status(api, run_id, "failed")
    assert "gate g1 is closed" in failed["error"]
    assert (
        await api.post(f"/api/runs/{failed['id']}/replay")
    ).status_code == 202  # fails again: still closed
    OPEN_GATES.add("g1")
    try:
        response = await api.post(f"/api/runs/{run_id}/replay")
        assert response.status_code == 202
        replay = response.json()
        assert replay["via"] == "replay" and replay["run_id"] != run_id
        done = await wait_for_status(api, replay["run_id"], "completed")
    finally:
        OPEN_GATES.discard("g1")
    assert done["replay_of"] == run_id
    assert done["input"] == failed["input"]
    assert done["tags"] == ["nightly"]
    assert done["event_id"] == f"{failed['event_id']}.replay-2"
    not_replayable = await api.post(f"/api/runs/{done['id']}/replay")
    assert not_replayable.status_code == 409


async def test_runs_list_filters_and_pages_with_a_cursor(api: httpx.AsyncClient) -> None:
    ids = []
    for n in range(5):
        tags = ["even"] if n % 2 == 0 else ["odd"]
        accepted = await send(
            api, "count.requested", {"steps": 1, "pause_seconds": 0}, id=f"list-{n}", tags=tags
        )
        ids.append(accepted["runs"][0]["run_id"])
    gate = (await send(api, "gate.requested", {"gate": "closed"}))["runs"][0]["run_id"]
    for run_id in ids:
        await wait_for_status(api, run_id, "completed")
    await wait_for_status(api, gate, "failed")

    seen, cursor = [], None
    while True:
        params: dict[str, str | int] = {
            "workflow": "count",
            "limit": 2,
            **({"cursor": cursor} if cursor else {}),
        }
        page = (await api.get("/api/runs", params=params)).json()
        assert len(page["runs"]) <= 2
        seen += [run["id"] for run in page["runs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))  # newest first, each exactly once

    even = (await api.get("/api/runs", params={"tag": "even"})).json()["runs"]
    assert [run["id"] for run in even] == [ids[4], ids[2], ids[0]]
    assert all(run["tags"] == ["even"] for run in even)
    failed = (await api.get("/api/runs", params={"status": "failed"})).json()["runs"]
    assert [run["id"] for run in failed] == [gate]
    by_event = (await api.get("/api/runs", params={"event": "gate.requested"})).json()["runs"]
    assert [run["id"] for run in by_event] == [gate]
    third = (await api.get(f"/api/runs/{ids[2]}")).json()["created_at"]
    window = {"workflow": "count", "created_after": third}
    assert [run["id"] for run in (await api.get("/api/runs", params=window)).json()["runs"]] == ids[:1:-1]
    window = {"workflow": "count", "created_before": third}
    assert [run["id"] for run in (await api.get("/api/runs", params=window)).json()["runs"]] == ids[1::-1]
    bad_time = await api.get("/api/runs", params={"created_after": "last week"})
    assert bad_time.status_code == 422 and bad_time.json()["detail"][0]["loc"] == ["query", "created_after"]
    bad_cursor = await api.get("/api/runs", params={"cursor": "not-a-cursor"})
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["detail"][0]["loc"] == ["query", "cursor"]
    bad_status = await api.get("/api/runs", params={"status": "sleeping"})
    assert bad_status.status_code == 422
    assert bad_status.json()["detail"][0]["loc"] == ["query", "status"]


async def test_batch_sends_every_event_and_answers_each(api: httpx.AsyncClient) -> None:
    batch = {
        "events": [
            {"name": "count.requested", "id": "b-1", "payload": {"steps": 1, "pause_seconds": 0}},
            {"name": "gate.requested", "id": "b-2", "payload": {"gate": "x"}},
        ]
    }
    response = await api.post("/api/events", json=batch)
    assert response.status_code == 202
    results = response.json()["results"]
    assert [(r["event_id"], r["runs"][0]["workflow"]) for r in results] == [("b-1", "count"), ("b-2", "gate")]
    await wait_for_status(api, results[0]["runs"][0]["run_id"], "completed")


@pytest.mark.parametrize(
    ("events", "loc", "message"),
    [
        (
            [{"name": "count.requested", "payload": {"steps": 1}}, {"name": "gate.requested", "payload": {}}],
            ["body", "events", 1, "payload", "gate"],
            "Field required",
        ),
        ([{"name": "nope", "payload": {}}], ["body", "events", 0, "name"], "unknown event 'nope'"),
        ([], ["body", "events"], "at least 1 item"),
        (
            [
                {"name": "hello", "id": "twice", "payload": {"name": "A"}},
                {"name": "hello", "id": "twice", "payload": {"name": "B"}},
            ],
            ["body", "events", 1, "payload"],
            "event id 'twice' is also events[0] of this batch, with another payload: send one of them "
            "(nothing of this batch was written)",
        ),
        (
            [{"name": "hello", "tags": ["x" * 101], "payload": {"name": "A"}}],
            ["body", "events", 0, "tags", 0],
            "String should have at most 100 characters",
        ),
    ],
)
async def test_invalid_batch_is_refused_whole_and_records_nothing(
    api: httpx.AsyncClient, store: RunStore, events: list[Any], loc: list[Any], message: str
) -> None:
    response = await api.post("/api/events", json={"events": events})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == loc
    assert message in error["msg"]
    assert await store.count() == 0


async def test_oversized_body_is_413_and_records_nothing(
    api: httpx.AsyncClient, store: RunStore, settings: Settings
) -> None:
    big = {"payload": {"name": "x" * settings.max_body_bytes}}
    response = await api.post("/api/events/hello", json=big)
    assert response.status_code == 413
    assert response.json() == {"detail": f"request body is larger than {settings.max_body_bytes} bytes"}

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit applies while reading
        yield b'{"payload": {"name": "'
        for _ in range(settings.max_body_bytes // 65536 + 1):
            yield b"x" * 65536
        yield b'"}}'

    streamed = await api.post(
        "/api/events/hello", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert await store.count() == 0


async def test_event_catalog_lists_schemas_and_what_each_event_does(api: httpx.AsyncClient) -> None:
    catalog = {e["name"]: e for e in (await api.get("/api/events")).json()}
    assert catalog["hello"]["starts"] == ["hello", "hello-audit"]
    assert catalog["approval.decided"]["signals"] == ["approval"]
    assert catalog["approval.decided"]["json_schema"]["required"] == ["document_id", "approved", "by"]


async def test_tenants_see_and_act_only_on_their_own_runs(
    temporal_address: str, dev_client: Client, store: RunStore, settings: Settings
) -> None:
    app = create_app(settings, TEST_CATALOG)
    async with (
        api_client(app, tenant="acme") as acme,
        build_worker(dev_client, store, settings, TEST_CATALOG),
    ):
        _, globex_key = await app.state.keys.create("globex", "tests")
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {globex_key}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers) as globex:
            mine = (await send(acme, "approval.requested", {"document_id": "shared-doc", "title": "A"}))[
                "runs"
            ][0]
            theirs = (await send(globex, "approval.requested", {"document_id": "shared-doc", "title": "G"}))[
                "runs"
            ][0]
            assert mine["run_id"] != theirs["run_id"]  # same event shape, separate runs per tenant
            await wait_for_status(acme, mine["run_id"], "running")
            run_url = f"/api/runs/{mine['run_id']}"
            assert (await globex.get(run_url)).status_code == 404
            assert (await globex.get(f"{run_url}/stream")).status_code == 404
            assert (await globex.post(f"{run_url}/cancel")).status_code == 404
            signal = {"payload": {"document_id": "shared-doc", "approved": True, "by": "mallory"}}
            assert (await globex.post(f"{run_url}/signals/approval.decided", json=signal)).status_code == 404
            assert (await globex.post(f"{run_url}/replay")).status_code == 404
            assert [r["id"] for r in (await globex.get("/api/runs")).json()["runs"]] == [theirs["run_id"]]
            # A routed event finds the running run of the sender's tenant only.
            decided = await send(
                globex, "approval.decided", {"document_id": "shared-doc", "approved": False, "by": "g"}
            )
            assert [r["run_id"] for r in decided["runs"]] == [theirs["run_id"]]
            assert (await wait_for_status(acme, mine["run_id"], "running"))["output"] is None
            await acme.post(f"{run_url}/cancel")
            await wait_for_status(acme, mine["run_id"], "cancelled")


async def test_ingest_over_the_tenant_rate_limit_is_answered_429_with_retry_after(
    temporal_address: str, store: RunStore, settings: Settings
) -> None:
    # One token per 10 s: the four requests fit in that however slow the machine (at 1/s they did not).
    tight = settings.model_copy(update={"ingest_rate_limit": 0.1, "ingest_burst": 3})
    async with api_client(create_app(tight, TEST_CATALOG)) as http:
        answers = [
            await http.post("/api/events/count.requested", json={"payload": {"steps": 1, "pause_seconds": 0}})
            for _ in range(4)
        ]
        assert [a.status_code for a in answers] == [202, 202, 202, 429]
        assert 1 <= int(answers[-1].headers["retry-after"]) <= 10  # when the next token comes
        batch = {"events": [{"name": "count.requested", "payload": {"steps": 1}}] * 5}
        assert (await http.post("/api/events", json=batch)).status_code == 429  # a batch counts each event
    assert await store.count() == 3
