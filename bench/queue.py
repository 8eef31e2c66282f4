"""The run queue (#17): how fast ``longhaul api`` accepts events into it, how fast dispatchers drain it, a
burst that must lose nothing, and how soon an accepted event's workflow starts when the queue is idle.

- **Accept**, interleaved in one run against raw ``client.start_workflow`` calls (50 in flight): single
  events posted by wrk over 50 connections, and batches of 500 events per request (4 in flight). The API
  runs without its dispatcher here (``LONGHAUL_API_DISPATCHER=false``): accepting is the measured part,
  the runs pile up pending. Goals: single ≥ 5 times, batch ≥ 25 times the raw start rate. Then single
  events offered at half the saturated rate (each connection paced): accept p99 ≤ 25 ms there (#28),
  the saturated p99 beside it.
- **Drain**: ``drain`` runs accepted first, then one ``longhaul dispatcher`` started: its start rate (from
  the first to the last start it noted) against raw ``start_workflow`` calls at the dispatcher's
  parallelism, in the same run. Goal ≥ 0.9.
- **Burst**: ``burst`` events from wrk at once to an API that dispatches: each answered 202 (or 429 with
  Retry-After); then every accepted event has one run record and one workflow (counted on the burst's
  own task queue), none lost.
- **Idle latency**: one event at a time to an idle API that dispatches: from the POST to the workflow's
  start time in Temporal, p50 and p99, beside a raw ``start_workflow`` call's (call to start time),
  interleaved. Goal p50 ≤ 20 ms.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import delete, func, select

from bench.harness import (
    UNLIMITED_INGEST,
    Comparison,
    Stack,
    Variant,
    api_client,
    each,
    interleaved,
    keep_in_flight,
    percentile,
    stack,
    warm_up,
)
from bench.wrk import post_events, wrk
from longhaul.db import Database, as_utc
from longhaul.records import RunRow
from longhaul.server.dispatcher import PARALLEL_STARTS

GOALS = {"single": 5.0, "batch": 25.0, "accept_p99_ms": 25.0, "drain": 0.9, "idle_p50_ms": 20.0}
RAW, SINGLE, BATCH = "raw start_workflow", "accept single (wrk)", "accept batches of 500"
BATCH_SIZE, BATCHES_IN_FLIGHT, CONNECTIONS = 500, 4, 50


async def run(events: int, drain: int, burst: int, idle: int, repeats: int) -> Comparison:
    if wrk() is None:
        raise RuntimeError("the queue benchmark needs wrk (Debian: apt-get install wrk)")
    comparison = Comparison("queue", baseline=RAW, work=events)
    comparison.notes.update(events=events, connections=CONNECTIONS, batch_size=BATCH_SIZE, goals=GOALS)
    async with stack("queue") as bench:
        await _accept(bench, comparison, events, repeats)
        comparison.notes["drain"] = await _drain(bench, drain)
        comparison.notes["burst"] = await _burst(bench, burst)
        comparison.notes["idle_latency_ms"] = await _idle(bench, idle)
    single, batch = comparison.ratio(SINGLE), comparison.ratio(BATCH)
    comparison.notes.update(
        single_ratio=round(single, 2),
        batch_ratio=round(batch, 2),
        meets_goals={
            "single": single >= GOALS["single"],
            "batch": batch >= GOALS["batch"],
            "accept_p99_ms": comparison.notes["accept_half_load"]["p99_ms"] <= GOALS["accept_p99_ms"],
            "drain": comparison.notes["drain"]["ratio"] >= GOALS["drain"],
            "burst": comparison.notes["burst"]["lost"] == 0 and comparison.notes["burst"]["extra"] == 0,
            "idle_p50_ms": comparison.notes["idle_latency_ms"]["p50"] <= GOALS["idle_p50_ms"],
        },
    )
    return comparison


def _raw(bench: Stack, task_queue: str) -> Any:
    def make(batch: str) -> Any:
        async def one(i: int) -> None:
            await bench.client.start_workflow(
                "hello", {"name": f"raw-{i}"}, id=f"raw-{batch}-{i}", task_queue=task_queue
            )

        return one

    return make


async def _accept(bench: Stack, comparison: Comparison, events: int, repeats: int) -> None:
    api, url, key = await bench.api("api-accepting", api_dispatcher="false", **UNLIMITED_INGEST)
    p99s: list[float] = []
    async with api_client(url, key, CONNECTIONS) as http:

        async def single(batch: str, count: int, _in_flight: int) -> None:
            result = await post_events(url, "/api/events/hello", key, batch, count, CONNECTIONS)
            if set(result.statuses) != {202}:
                raise RuntimeError(f"wrk: the API refused events: {result.statuses}")
            p99s.append(result.p99_ms)

        async def batches(batch: str, count: int, _in_flight: int) -> None:
            async def one(b: int) -> None:
                items = [
                    {"name": "hello", "id": f"{batch}-{i}", "payload": {"name": f"n{i}"}}
                    for i in range(b * BATCH_SIZE, min(count, (b + 1) * BATCH_SIZE))
                ]
                (await http.post("/api/events", json={"events": items})).raise_for_status()

            await keep_in_flight(-(-count // BATCH_SIZE), BATCHES_IN_FLIGHT, one)

        variants: dict[str, Variant] = {RAW: each(_raw(bench, "no-worker")), SINGLE: single, BATCH: batches}
        await warm_up(variants, 500, CONNECTIONS)
        p99s.clear()
        await interleaved(bench, comparison, variants, events, CONNECTIONS, repeats)
        await _quiet(bench)  # the raw variant's starts leave the server busy for a while after they return
        comparison.notes["accept_half_load"] = await _half_load(url, key, comparison.rate(SINGLE), events)
    api.stop()
    comparison.notes["accept_p99_ms"] = round(sorted(p99s)[len(p99s) // 2], 2)


async def _quiet(bench: Stack, patience: float = 120) -> None:
    """Wait until the stack's processes use under a fifth of a core together (or ``patience`` passed)."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        before = sum(bench.cpu_seconds().values())
        await asyncio.sleep(1)
        if sum(bench.cpu_seconds().values()) - before < 0.2:
            return


async def _half_load(url: str, key: str, saturated: float, events: int) -> dict[str, float]:
    """Single events offered at half the saturated accept rate, paced per connection: the achieved rate
    and the answers' p50 and p99 (the saturated p99 is ``accept_p99_ms``)."""
    offered = saturated / 2
    # Many connections, each paced to a long interval, so an answer's latency delays its next request
    # little: the load offered stays near the target whatever the answers take (wrk has no open loop).
    connections = 4 * CONNECTIONS
    delay_ms = connections / offered * 1000
    prefix = f"half-{uuid.uuid4().hex[:6]}"
    start = time.perf_counter()
    result = await post_events(url, "/api/events/hello", key, prefix, events, connections, delay_ms=delay_ms)
    achieved = result.requests / (time.perf_counter() - start)
    return {"offered_per_s": round(offered, 1), "achieved_per_s": round(achieved, 1), "p50_ms": result.p50_ms,
            "p99_ms": result.p99_ms}  # fmt: skip


async def _pending(db: Database, tenant: str = "bench") -> tuple[int, datetime | None, datetime | None]:
    """Runs of ``tenant`` not yet started in Temporal, and the first and last start noted."""
    async with db.sessions() as session:
        waiting = await session.scalar(
            select(func.count()).where(RunRow.tenant == tenant, RunRow.dispatched_at.is_(None))
        )
        first, last = (
            await session.execute(
                select(func.min(RunRow.dispatched_at), func.max(RunRow.dispatched_at)).where(
                    RunRow.tenant == tenant
                )
            )
        ).one()
    return int(waiting or 0), as_utc(first), as_utc(last)


async def _drain(bench: Stack, count: int) -> dict[str, Any]:
    """Accept ``count`` runs with no dispatcher, then time one dispatcher starting them; and ``count``
    raw starts at its parallelism, in the same run."""
    db = Database(bench.settings().app_database_url)
    try:
        async with db.engine.begin() as conn:  # the accept measurement's runs: not this measurement's
            await conn.execute(delete(RunRow).where(RunRow.dispatched_at.is_(None)))
        api, url, key = await bench.api("api-for-drain", api_dispatcher="false", **UNLIMITED_INGEST)
        prefix = f"drain-{uuid.uuid4().hex[:6]}"
        async with api_client(url, key, BATCHES_IN_FLIGHT, timeout=300) as http:

            async def one(b: int) -> None:
                items = [
                    {"name": "hello", "id": f"{prefix}-{i}", "payload": {"name": "d"}}
                    for i in range(b * BATCH_SIZE, min(count, (b + 1) * BATCH_SIZE))
                ]
                (await http.post("/api/events", json={"events": items})).raise_for_status()

            await keep_in_flight(-(-count // BATCH_SIZE), BATCHES_IN_FLIGHT, one)
        api.stop()
        waiting = (await _pending(db))[0]
        dispatcher = bench.dispatcher(task_queue="drained")
        began = time.perf_counter()
        while (await _pending(db))[0] > 0:
            if dispatcher.popen.poll() is not None:
                raise RuntimeError(f"the dispatcher exited: {dispatcher.log.read_text()[-2000:]}")
            await asyncio.sleep(0.5)
        wall = time.perf_counter() - began
        _, first, last = await _pending(db)
        dispatcher.stop()
    finally:
        await db.close()
    assert first is not None and last is not None
    rate = waiting / max((last - first).total_seconds(), 1e-3)
    raw_seconds = await _timed_raw(bench, count)
    raw_rate = count / raw_seconds
    return {
        "runs": waiting,
        "dispatcher_starts_per_s": round(rate, 1),
        "dispatcher_wall_s_with_startup": round(wall, 1),
        "raw_starts_per_s": round(raw_rate, 1),
        "raw_in_flight": PARALLEL_STARTS,
        "ratio": round(rate / raw_rate, 3),
    }


async def _timed_raw(bench: Stack, count: int) -> float:
    began = time.perf_counter()
    await keep_in_flight(count, PARALLEL_STARTS, _raw(bench, "no-worker")(uuid.uuid4().hex[:8]))
    return time.perf_counter() - began


async def _burst(bench: Stack, count: int) -> dict[str, Any]:
    """``count`` events from wrk at once to an API that dispatches (its runs on a task queue of their
    own); afterwards every accepted event must have its record and its workflow, and nothing more."""
    task_queue = f"burst-{uuid.uuid4().hex[:6]}"
    api, url, key = await bench.api("api-burst", task_queue=task_queue, **UNLIMITED_INGEST)
    prefix = f"burst-{uuid.uuid4().hex[:6]}"
    began = time.perf_counter()
    result = await post_events(url, "/api/events/hello", key, prefix, count, CONNECTIONS * 4)
    accepted_in = time.perf_counter() - began
    accepted = result.statuses.get(202, 0)
    db = Database(bench.settings().app_database_url)
    try:

        async def counts() -> tuple[int, int]:
            """The burst's run records, and how many of them are started (wrk stops with requests still
            in flight, which the API goes on to accept: count them too, once all is started)."""
            ours = (RunRow.event_id.startswith(prefix), RunRow.workflow == "hello")
            async with db.sessions() as session:
                recorded = await session.scalar(select(func.count()).where(*ours))
                started = await session.scalar(
                    select(func.count()).where(*ours, RunRow.dispatched_at.is_not(None))
                )
            return int(recorded or 0), int(started or 0)

        deadline = time.monotonic() + 1800
        for _ in range(1800):
            recorded, started = await counts()
            if started >= recorded or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
        drained_in = time.perf_counter() - began
        # Temporal's visibility (what the count reads) is written after a start returns: a count taken
        # at once can miss the last few. Count again for a while before calling any missing.
        for _ in range(60):
            workflows = (await bench.client.count_workflows(f"TaskQueue = '{task_queue}'")).count
            if workflows >= recorded:
                break
            await asyncio.sleep(1)
    finally:
        await db.close()
        api.stop()  # on SQLite one dispatcher holds the lease: the idle measurement's must get it
    return {
        "events": count,
        "statuses": {str(k): v for k, v in sorted(result.statuses.items())},
        "accepted_in_s": round(accepted_in, 1),
        "accept_p99_ms": result.p99_ms,
        "all_started_in_s": round(drained_in, 1),
        "runs_recorded": recorded,
        "workflows": workflows,
        "lost": max(0, accepted - recorded) + max(0, recorded - workflows),
        "extra": max(0, workflows - recorded),
    }


async def _idle(bench: Stack, count: int) -> dict[str, Any]:
    """One event at a time to an idle, dispatching API: POST to workflow start (Temporal's start time);
    interleaved with it, one raw ``start_workflow`` call at a time, from the call to the same start time."""
    _, url, key = await bench.api("api-idle", task_queue="idle", **UNLIMITED_INGEST)
    latencies: list[float] = []
    raw: list[float] = []
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}) as http:
        for i in range(count):
            await asyncio.sleep(0.05)  # idle between events
            sent = datetime.now(UTC)
            answer = await http.post("/api/events/hello", json={"id": f"idle-{i}", "payload": {"name": "i"}})
            answer.raise_for_status()
            latencies.append(await _started_after(bench, f"hello/bench/idle-{i}", sent))
            await asyncio.sleep(0.05)
            sent = datetime.now(UTC)
            workflow_id = f"raw-idle-{uuid.uuid4().hex}"
            await bench.client.start_workflow("hello", {"name": "i"}, id=workflow_id, task_queue="no-worker")
            raw.append(await _started_after(bench, workflow_id, sent))
    return {
        "p50": round(percentile(latencies, 50), 1),
        "p99": round(percentile(latencies, 99), 1),
        "raw_start_p50": round(percentile(raw, 50), 1),
        "raw_start_p99": round(percentile(raw, 99), 1),
        "all": [round(v, 2) for v in latencies],
    }


async def _started_after(bench: Stack, workflow_id: str, sent: datetime) -> float:
    """Milliseconds from ``sent`` to the workflow's start time in Temporal (polled until it exists)."""
    for _ in range(400):
        try:
            description = await bench.client.get_workflow_handle(workflow_id).describe()
            return (description.start_time - sent).total_seconds() * 1000
        except Exception:
            await asyncio.sleep(0.005)
    raise RuntimeError(f"{workflow_id} never started")
