"""The run queue through the HTTP API, on a real dev server, a real worker, SQLite and PostgreSQL: accept
records pending runs; the API's dispatcher starts them within their limits (per-key concurrency, rate,
throttle), their delay and their TTL; bad options are refused with nothing written."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

import longhaul.queue.accepting
import longhaul.queue.claiming
import longhaul.queue.inspecting
import longhaul.records
import longhaul.server.dispatcher
import longhaul.server.service
import longhaul.storage.reads
import longhaul.storage.writes
from longhaul.api import create_app
from longhaul.config import Settings
from longhaul.db import as_utc
from longhaul.server.worker import build_worker
from longhaul.storage import RunRow, RunStore
from tests.apps import api_client, key_id, wait_for_status
from tests.pipelines import TEST_CATALOG
from tests.postgres import both_databases

pytestmark = both_databases


@pytest.fixture
async def worker(dev_client: Client, store: RunStore, settings: Settings) -> AsyncIterator[None]:
    async with build_worker(dev_client, store, settings, TEST_CATALOG):
        yield


@pytest.fixture
async def api(temporal_address: str, settings: Settings, worker: None) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(create_app(settings, TEST_CATALOG)) as http:
        yield http


async def _send(http: httpx.AsyncClient, event: str, payload: dict[str, Any], **body: Any) -> dict[str, Any]:
    answer = await http.post(f"/api/events/{event}", json={"payload": payload, **body})
    assert answer.status_code == 202, answer.text
    [run] = answer.json()["runs"]
    return dict(run)


def _most_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    """The largest number of intervals open at one moment (a close counts before an open at one time)."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = current = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return most


async def _claim_times(store: RunStore, run_ids: list[str]) -> list[datetime]:
    async with store.db.sessions() as session:
        times = await session.scalars(select(RunRow.claimed_at).where(RunRow.id.in_(run_ids)))
        return sorted(t for t in (as_utc(t) for t in times) if t is not None)


async def test_at_most_two_runs_per_key_at_any_moment_across_200_events_over_10_keys(
    api: httpx.AsyncClient, store: RunStore
) -> None:
    tag = uuid.uuid4().hex[:8]
    run_ids = []
    for first in (0, 100):
        events = [
            {
                "name": "limited.work",
                "id": f"{tag}-{i}",
                "payload": {"key": f"{tag}-{i % 10}", "seconds": 0.2},
            }
            for i in range(first, first + 100)
        ]
        answer = await api.post("/api/events", json={"events": events})
        assert answer.status_code == 202, answer.text
        run_ids += [result["runs"][0]["run_id"] for result in answer.json()["results"]]
    assert len(set(run_ids)) == 200

    by_key: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for run_id in run_ids:
        run = await wait_for_status(api, run_id, "completed", limit=240)
        started, finished = (
            datetime.fromisoformat(run["started_at"]),
            datetime.fromisoformat(run["finished_at"]),
        )
        by_key[run["input"]["key"]].append((started, finished))
    assert len(by_key) == 10
    most = {key: _most_at_once(intervals) for key, intervals in by_key.items()}
    assert max(most.values()) == 2, most  # the limit was reached, and never passed


async def test_an_idle_dispatcher_is_handed_an_unlimited_run_by_its_accept_and_claims_a_limited_one(
    temporal_address: str, settings: Settings, worker: None
) -> None:
    app = create_app(settings, TEST_CATALOG)
    async with api_client(app) as http:
        dispatcher = app.state.dispatcher
        free = await _send(http, "count.requested", {"steps": 1, "pause_seconds": 0})
        await wait_for_status(http, free["run_id"], "completed")
        assert dispatcher.taken == 1  # written claimed: its start waited for no claim
        limited = await _send(http, "limited.work", {"key": uuid.uuid4().hex, "seconds": 0})
        await wait_for_status(http, limited["run_id"], "completed")
        assert (dispatcher.taken, dispatcher.started) == (1, 2)  # its slots were counted by a claim


async def test_a_pending_run_says_whose_slot_is_busy_and_starts_once_it_frees(api: httpx.AsyncClient) -> None:
    key = f"user-{uuid.uuid4().hex[:8]}"
    first = await _send(api, "solo.work", {"key": key, "seconds": 3})
    await wait_for_status(api, first["run_id"], "running")
    second = await _send(api, "solo.work", {"key": key, "seconds": 0})
    assert second["status"] == "pending"
    waiting = (await api.get(f"/api/runs/{second['run_id']}")).json()
    assert waiting["status"] == "pending"
    assert waiting["pending_reason"] == f"1 of 1 slots of solo/default/key={key} busy"
    listed = (await api.get("/api/runs", params={"status": "pending", "workflow": "limited-work"})).json()
    assert second["run_id"] in {run["id"] for run in listed["runs"]}
    [solo] = [queue for queue in (await api.get("/api/queues")).json() if queue["name"] == "solo"]
    assert (solo["pending"], solo["running"], solo["rules"]) == (1, 1, ["at most 1 at once per key"])
    assert solo["oldest_wait_seconds"] > 0 and solo["workflows"] == ["limited-work"]

    done_first = await wait_for_status(api, first["run_id"], "completed")
    done_second = await wait_for_status(api, second["run_id"], "completed")
    assert done_second["started_at"] >= done_first["finished_at"]
    assert done_second["pending_reason"] is None


async def test_a_delayed_run_waits_its_time_even_across_an_api_restart(
    temporal_address: str, settings: Settings, worker: None
) -> None:
    key = f"later-{uuid.uuid4().hex[:8]}"
    async with api_client(create_app(settings, TEST_CATALOG)) as http:
        run = await _send(http, "limited.work", {"key": key, "seconds": 0}, options={"delay": 2})
        assert run["status"] == "delayed"
        shown = (await http.get(f"/api/runs/{run['run_id']}")).json()
        assert shown["pending_reason"].startswith("delayed until ")
    # The API (and its dispatcher) stopped; a new one finds the delayed run and starts it when due.
    async with api_client(create_app(settings, TEST_CATALOG)) as http:
        done = await wait_for_status(http, run["run_id"], "completed")
    waited = datetime.fromisoformat(done["started_at"]) - datetime.fromisoformat(done["created_at"])
    assert waited.total_seconds() >= 2
    assert datetime.fromisoformat(done["not_before"]) <= datetime.fromisoformat(done["started_at"])


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[timedelta], None]:
    """Moves app time (what the queue and the dispatcher compare delays, debounces and TTLs with) forward
    by the given amount: hours pass in a test, as a time-skipping clock would let them."""
    offset = timedelta(0)

    def now() -> datetime:
        return datetime.now(UTC) + offset

    for module in (
        longhaul.queue.accepting,
        longhaul.queue.claiming,
        longhaul.queue.inspecting,
        longhaul.records,
        longhaul.storage.reads,
        longhaul.storage.writes,
        longhaul.server.dispatcher,
        longhaul.server.service,
    ):
        monkeypatch.setattr(module, "utcnow", now)

    def advance(by: timedelta) -> None:
        nonlocal offset
        offset += by

    return advance


async def _still_waiting(http: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    # An accept wakes the dispatcher (its idle sleep was timed by the clock before the move): it claims
    # whatever is due now.
    await _send(http, "limited.work", {"key": uuid.uuid4().hex, "seconds": 0})
    await asyncio.sleep(0.6)
    run: dict[str, Any] = (await http.get(f"/api/runs/{run_id}")).json()
    assert run["status"] == "delayed" and run["started_at"] is None, run
    return run


async def test_delays_and_debounces_of_hours_wait_exactly_their_time_on_a_moved_clock(
    api: httpx.AsyncClient, clock: Callable[[timedelta], None]
) -> None:
    # One peer's long delays (over an hour) silently never fired: these wait hours of app time.
    key = f"slow-{uuid.uuid4().hex[:8]}"
    later = await _send(
        api, "limited.work", {"key": key, "seconds": 0}, options={"delay": 7200, "ttl": 86400}
    )
    first = await _send(api, "slow.debounced.work", {"key": key, "seconds": 0})
    clock(timedelta(minutes=50))
    again = await _send(api, "slow.debounced.work", {"key": key, "seconds": 0.1})  # quiet hour starts again
    assert again["run_id"] == first["run_id"] and again["via"] == "debounce"
    clock(timedelta(minutes=59))  # 1 h 49 min: the debounce's hour counts from the second event
    shown = await _still_waiting(api, first["run_id"])
    assert shown["pending_reason"].startswith("delayed until ")
    await _still_waiting(api, later["run_id"])
    clock(timedelta(minutes=2))  # 1 h 51 min
    debounced = await wait_for_status(api, first["run_id"], "completed")
    assert debounced["input"]["seconds"] == 0.1  # trailing: the last payload
    await _still_waiting(api, later["run_id"])
    clock(timedelta(minutes=10))  # 2 h 1 min
    await wait_for_status(api, later["run_id"], "completed")


async def test_a_run_not_started_before_its_ttl_expires_and_never_reaches_temporal(
    api: httpx.AsyncClient, dev_client: Client
) -> None:
    key = f"busy-{uuid.uuid4().hex[:8]}"
    blocker = await _send(api, "solo.work", {"key": key, "seconds": 4})
    late = await _send(api, "solo.work", {"key": key, "seconds": 0}, options={"ttl": 1})
    expired = await wait_for_status(api, late["run_id"], "expired")
    assert "TTL" in expired["error"]
    with pytest.raises(RPCError) as missing:
        await dev_client.get_workflow_handle(expired["workflow_id"]).describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND
    await wait_for_status(api, blocker["run_id"], "completed")


async def test_a_rate_limit_allows_two_starts_per_two_seconds_per_key_and_holds_no_other_key(
    api: httpx.AsyncClient, store: RunStore
) -> None:
    key, other = f"r-{uuid.uuid4().hex[:8]}", f"o-{uuid.uuid4().hex[:8]}"
    limited = [(await _send(api, "rated.work", {"key": key, "seconds": 0}))["run_id"] for _ in range(5)]
    free = [(await _send(api, "rated.work", {"key": other, "seconds": 0}))["run_id"] for _ in range(2)]
    for run_id in [*limited, *free]:
        await wait_for_status(api, run_id, "completed")
    times = await _claim_times(store, limited)
    assert all((times[i + 2] - times[i]).total_seconds() >= 2 for i in range(len(times) - 2)), times
    other_times = await _claim_times(store, free)
    assert other_times[-1] < times[-1]  # the other key did not wait behind the limited one


async def test_a_refusing_rate_limit_answers_429_with_retry_after_and_writes_nothing_over_it(
    api: httpx.AsyncClient,
) -> None:
    key, other = f"r-{uuid.uuid4().hex[:8]}", f"o-{uuid.uuid4().hex[:8]}"
    body = {"payload": {"key": key, "seconds": 0}}
    accepted = [
        await api.post("/api/events/refused.work", json={"id": f"{key}-{i}", **body}) for i in range(2)
    ]
    assert [answer.status_code for answer in accepted] == [202, 202]
    over = await api.post("/api/events/refused.work", json={"id": f"{key}-2", **body})
    assert over.status_code == 429, over.text
    assert over.json()["scope"] == f"refused/default/key={key}"
    assert "at most 2 events per 2 s" in over.json()["detail"]
    assert 1 <= int(over.headers["Retry-After"]) <= 2
    again = await api.post("/api/events/refused.work", json={"id": f"{key}-0", **body})  # a resend
    assert again.json()["runs"][0]["run_id"] == accepted[0].json()["runs"][0]["run_id"]
    batch = [{"name": "refused.work", "id": f"{other}-{i}", "payload": {"key": other}} for i in range(3)]
    assert (await api.post("/api/events", json={"events": batch})).status_code == 429  # the whole batch
    runs = (await api.get("/api/runs", params={"workflow": "limited-work", "q": other})).json()["runs"]
    assert runs == []  # nothing of it written
    await asyncio.sleep(int(over.headers["Retry-After"]))
    later = await api.post("/api/events/refused.work", json={"id": f"{key}-2", **body})
    assert later.status_code == 202, later.text


async def test_a_throttle_spreads_starts_evenly(api: httpx.AsyncClient, store: RunStore) -> None:
    key = f"t-{uuid.uuid4().hex[:8]}"
    run_ids = [(await _send(api, "throttled.work", {"key": key, "seconds": 0}))["run_id"] for _ in range(4)]
    for run_id in run_ids:
        await wait_for_status(api, run_id, "completed")
    times = await _claim_times(store, run_ids)
    assert all((later - earlier).total_seconds() >= 1 for earlier, later in itertools.pairwise(times)), times


async def test_cancelling_a_pending_run_closes_it_without_starting_it(
    api: httpx.AsyncClient, dev_client: Client
) -> None:
    key = f"c-{uuid.uuid4().hex[:8]}"
    blocker = await _send(api, "solo.work", {"key": key, "seconds": 2})
    waiting = await _send(api, "solo.work", {"key": key, "seconds": 0})
    cancelled = await api.post(f"/api/runs/{waiting['run_id']}/cancel")
    assert cancelled.status_code == 202, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["error"] == f"cancelled by key {key_id(api)} (API) (before it started)"
    await wait_for_status(api, blocker["run_id"], "completed")
    with pytest.raises(RPCError):
        await dev_client.get_workflow_handle(cancelled.json()["workflow_id"]).describe()


@pytest.mark.parametrize(
    ("options", "where", "says"),
    [
        ({"bogus": 1}, '"options","bogus"', "Extra inputs are not permitted"),
        ({"delay": -1}, '"options","delay"', "greater than or equal to 0"),
        ({"ttl": 0}, '"options","ttl"', "greater than 0"),
        ({"delay": 10, "ttl": 5}, '"options","ttl"', "would expire"),
        ({"not_before": "2026-01-01T00:00:00"}, '"options","not_before"', "timezone"),
        ({"concurrency_key": "nope"}, '"options","concurrency_key"', "has no field 'nope'"),
        ({"priority": 9}, '"options","priority"', "less than or equal to 5"),
        ({"idempotency_key_ttl": 0}, '"options","idempotency_key_ttl"', "greater than 0"),
    ],
)
async def test_bad_flow_control_options_are_refused_naming_the_field_and_nothing_is_written(
    api: httpx.AsyncClient, store: RunStore, options: dict[str, Any], where: str, says: str
) -> None:
    before = await store.count()
    answer = await api.post("/api/events/limited.work", json={"payload": {"key": "k"}, "options": options})
    assert answer.status_code == 422, answer.text
    assert where in answer.text and says in answer.text, answer.text
    batch = await api.post(
        "/api/events",
        json={"events": [{"name": "hello", "payload": {"name": "ok"}},
                         {"name": "limited.work", "payload": {"key": "k"}, "options": options}]},
    )  # fmt: skip
    assert batch.status_code == 422, batch.text
    assert await store.count() == before


async def test_an_event_id_makes_a_new_run_once_its_idempotency_key_expired(api: httpx.AsyncClient) -> None:
    event_id, key = f"idem-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:8]
    work = {"key": key, "seconds": 0}
    first = await _send(api, "limited.work", work, id=event_id, options={"idempotency_key_ttl": 1})
    assert (await _send(api, "limited.work", work, id=event_id))["run_id"] == first["run_id"]
    done = await wait_for_status(api, first["run_id"], "completed")
    expires = datetime.fromisoformat(done["idempotency_key_expires_at"])
    await asyncio.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.1)
    # After it, the same id makes the next run (another payload is no conflict), once, even when it comes
    # twice in one call.
    other = {"key": key, "seconds": 0.1}
    answer = await api.post(
        "/api/events",
        json={"events": [{"name": "limited.work", "id": event_id, "payload": other}] * 2},
    )
    assert answer.status_code == 202, answer.text
    [second], [twin] = (result["runs"] for result in answer.json()["results"])
    assert second["run_id"] == twin["run_id"] != first["run_id"], answer.text
    kept = await _send(api, "limited.work", other, id=event_id)  # (its event had no TTL: kept for ever)
    assert kept["run_id"] == second["run_id"]
    run = await wait_for_status(api, second["run_id"], "completed")
    assert (run["generation"], run["event_id"], run["input"]) == (2, event_id, other)
    assert run["workflow_id"] == f"{done['workflow_id']}~2" and run["idempotency_key_expires_at"] is None


async def test_one_event_id_with_two_payloads_in_one_batch_is_refused_at_the_repeat_and_writes_nothing(
    api: httpx.AsyncClient, store: RunStore
) -> None:
    event_id, key = f"twice-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:8]
    before = await store.count()
    same = {"name": "limited.work", "id": event_id, "payload": {"key": key, "seconds": 0}}
    other = {**same, "payload": {"key": key, "seconds": 1}}
    answer = await api.post(
        "/api/events", json={"events": [{"name": "hello", "payload": {"name": "x"}}, same, other]}
    )
    assert answer.status_code == 422, answer.text  # bad input: which payload is meant?
    [problem] = answer.json()["detail"]
    assert problem["loc"] == ["body", "events", 2, "payload"]
    assert (
        "is also events[1] of this batch" in problem["msg"]
        and "nothing of this batch was written" in problem["msg"]
    )
    assert await store.count() == before
    answer = await api.post("/api/events", json={"events": [same, same]})  # the same payload twice: one run
    assert answer.status_code == 202, answer.text
    [first], [second] = (result["runs"] for result in answer.json()["results"])
    assert first["run_id"] == second["run_id"]
    assert await store.count() == before + 1


async def test_a_singleton_skips_an_event_while_its_key_has_an_open_run(api: httpx.AsyncClient) -> None:
    key = f"s-{uuid.uuid4().hex[:8]}"
    first = await _send(api, "single.work", {"key": key, "seconds": 1})
    again = await _send(api, "single.work", {"key": key, "seconds": 0})
    assert again["run_id"] == first["run_id"] and again["via"] == "singleton"
    await wait_for_status(api, first["run_id"], "completed")
    after = await _send(api, "single.work", {"key": key, "seconds": 0})
    assert after["run_id"] != first["run_id"] and after["via"] == "start"
    await wait_for_status(api, after["run_id"], "completed")


async def test_a_cancelling_singleton_cancels_the_open_run_and_starts_once_it_has_closed(
    api: httpx.AsyncClient,
) -> None:
    key = f"rc-{uuid.uuid4().hex[:8]}"
    first = await _send(api, "replacing.work", {"key": key, "seconds": 30})
    await wait_for_status(api, first["run_id"], "running")
    answer = await api.post("/api/events/replacing.work", json={"payload": {"key": key, "seconds": 0}})
    assert answer.status_code == 202, answer.text
    new, old = answer.json()["runs"]
    assert (new["via"], old["via"], old["run_id"]) == ("start", "cancel", first["run_id"])
    closed = await wait_for_status(api, first["run_id"], "cancelled")
    done = await wait_for_status(api, new["run_id"], "completed")
    assert done["started_at"] >= closed["finished_at"]


async def test_cancel_on_cancels_the_runs_of_the_events_key_started_or_waiting_and_no_other(
    api: httpx.AsyncClient,
) -> None:
    key, other = f"k-{uuid.uuid4().hex[:8]}", f"o-{uuid.uuid4().hex[:8]}"
    running = await _send(api, "cancellable.work", {"key": key, "seconds": 30})
    later = await _send(api, "cancellable.work", {"key": key, "seconds": 0}, options={"delay": 60})
    spared = await _send(api, "cancellable.work", {"key": other, "seconds": 1})
    await wait_for_status(api, running["run_id"], "running")
    answer = await api.post("/api/events/stop.work", json={"payload": {"key": key}})
    assert answer.status_code == 202, answer.text
    reached = {(run["run_id"], run["via"]) for run in answer.json()["runs"]}
    assert reached == {(running["run_id"], "cancel"), (later["run_id"], "cancel")}
    by = f"cancelled by event stop.work ({answer.json()['event_id']})"
    waiting = (await api.get(f"/api/runs/{later['run_id']}")).json()
    assert waiting["status"] == "cancelled" and waiting["error"] == f"{by} (before it started)"
    assert (await wait_for_status(api, running["run_id"], "cancelled"))["error"] == by
    await wait_for_status(api, spared["run_id"], "completed")


async def test_debounced_events_become_one_run_with_the_last_payload_after_a_quiet_second(
    api: httpx.AsyncClient,
) -> None:
    key = f"d-{uuid.uuid4().hex[:8]}"
    sent = []
    for n in range(3):
        sent.append(await _send(api, "debounced.work", {"key": key, "seconds": n / 10}))
        await asyncio.sleep(0.3)
    assert {run["run_id"] for run in sent} == {sent[0]["run_id"]}
    assert [run["via"] for run in sent] == ["start", "debounce", "debounce"]
    done = await wait_for_status(api, sent[0]["run_id"], "completed")
    assert done["input"]["seconds"] == 0.2  # the last payload
    # It started a quiet second after the last event, not after the first.
    assert datetime.fromisoformat(done["not_before"]) - datetime.fromisoformat(
        done["created_at"]
    ) >= timedelta(seconds=1.1)
    assert datetime.fromisoformat(done["started_at"]) >= datetime.fromisoformat(done["not_before"])


async def test_a_stream_of_debounced_events_starts_at_the_latest_after_max_delay(
    api: httpx.AsyncClient,
) -> None:
    key = f"m-{uuid.uuid4().hex[:8]}"
    first = await _send(api, "debounced.work", {"key": key, "seconds": 0})
    run = first
    for _ in range(20):  # an event every 0.25 s for 5 s: never a quiet second
        await asyncio.sleep(0.25)
        run = await _send(api, "debounced.work", {"key": key, "seconds": 0})
        if run["run_id"] != first["run_id"]:
            break  # the first run started (max delay); this event opened the next one
    assert run["run_id"] != first["run_id"], "the first run never started while events kept coming"
    done = await wait_for_status(api, first["run_id"], "completed")
    started, created = datetime.fromisoformat(done["started_at"]), datetime.fromisoformat(done["created_at"])
    assert datetime.fromisoformat(done["not_before"]) - created == timedelta(seconds=3)
    assert started - created >= timedelta(seconds=3)


async def test_leading_debounce_keeps_the_first_payload(api: httpx.AsyncClient) -> None:
    key = f"l-{uuid.uuid4().hex[:8]}"
    sent = [await _send(api, "leading.work", {"key": key, "seconds": n / 10}) for n in range(3)]
    assert len({run["run_id"] for run in sent}) == 1
    done = await wait_for_status(api, sent[0]["run_id"], "completed")
    assert done["input"]["seconds"] == 0


async def test_a_trigger_filter_starts_runs_only_for_matching_events_and_the_answer_says_which_not(
    api: httpx.AsyncClient,
) -> None:
    key = f"vip-{uuid.uuid4().hex[:8]}"
    matching = await api.post("/api/events/filtered.work", json={"payload": {"key": key, "seconds": 0.6}})
    assert matching.status_code == 202 and matching.json()["filtered_out"] == []
    [run] = matching.json()["runs"]
    await wait_for_status(api, run["run_id"], "completed")
    for payload in ({"key": key, "seconds": 0.1}, {"key": f"x-{key}", "seconds": 0.6}):
        skipped = await api.post("/api/events/filtered.work", json={"payload": payload})
        assert skipped.status_code == 202, skipped.text
        assert skipped.json()["runs"] == [] and skipped.json()["filtered_out"] == ["limited-work"]
    listed = (await api.get("/api/runs", params={"event": "filtered.work"})).json()["runs"]
    assert [r["id"] for r in listed] == [run["run_id"]]  # nothing recorded for the others


async def test_a_collecting_debounce_starts_with_every_event_of_the_window_in_order_up_to_its_bound(
    api: httpx.AsyncClient,
) -> None:
    key, busy = f"c-{uuid.uuid4().hex[:8]}", f"busy-{uuid.uuid4().hex[:8]}"
    first = await _send(api, "collected.work", {"key": key, "seconds": 0}, id=f"{key}-0")
    await asyncio.sleep(0.3)
    second = await _send(api, "collected.work", {"key": key, "seconds": 1}, id=f"{key}-1")
    again = await _send(api, "collected.work", {"key": key, "seconds": 1}, id=f"{key}-1")  # a resend
    assert [first["via"], second["via"], again["via"]] == ["start", "debounce", "debounce"]
    assert first["run_id"] == second["run_id"] == again["run_id"]
    done = await wait_for_status(api, first["run_id"], "completed")
    assert done["output"] == [f"{key}:0", f"{key}:1"]  # both, in order, the resent one once
    assert done["input"]["event_ids"] == [f"{key}-0", f"{key}-1"]
    assert datetime.fromisoformat(done["started_at"]) >= datetime.fromisoformat(done["not_before"])
    sent = [await _send(api, "collected.work", {"key": busy, "seconds": n}) for n in range(4)]
    assert [run["via"] for run in sent] == ["start", "debounce", "debounce", "start"]  # 3 fill the first
    full = await wait_for_status(api, sent[0]["run_id"], "completed")
    assert full["output"] == [f"{busy}:0", f"{busy}:1", f"{busy}:2"]
    rest = await wait_for_status(api, sent[3]["run_id"], "completed")
    assert rest["output"] == [f"{busy}:3"]


async def test_a_batch_starts_when_full_and_a_partial_one_after_its_wait(api: httpx.AsyncClient) -> None:
    key, lone = f"b-{uuid.uuid4().hex[:8]}", f"lone-{uuid.uuid4().hex[:8]}"
    sent = [await _send(api, "batched.work", {"key": key, "seconds": n}) for n in range(3)]
    filled = datetime.now(UTC)
    sent.append(await _send(api, "batched.work", {"key": key, "seconds": 3}))
    assert [run["via"] for run in sent] == ["start", "batch", "batch", "start"]
    full = await wait_for_status(api, sent[0]["run_id"], "completed")
    assert full["output"] == [f"{key}:0", f"{key}:1", f"{key}:2"]
    assert datetime.fromisoformat(full["not_before"]) <= filled  # full: due at once, not after max_wait
    partial = await wait_for_status(api, sent[3]["run_id"], "completed")
    assert partial["output"] == [f"{key}:3"]
    alone = await _send(api, "batched.work", {"key": lone, "seconds": 0})
    waited = await wait_for_status(api, alone["run_id"], "completed")
    assert datetime.fromisoformat(waited["started_at"]) - datetime.fromisoformat(
        waited["created_at"]
    ) >= timedelta(seconds=1.5)
