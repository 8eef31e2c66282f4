"""Ingest: events accepted per second by ``longhaul api`` against raw ``start_workflow`` calls.

Sustained: ``connections`` HTTP clients post ``hello`` events (validated, recorded, started), measured
interleaved with the same number of concurrent ``client.start_workflow`` calls from this process; the
rate ratio says whether the API could ever be the bottleneck (goal ≥ 0.9). Where wrk is installed, it
posts the same events as a third variant: a load generator in C, so the ratio is not also a measure of a
Python HTTP client's CPU on the same two cores (bench/wrk.py). No worker runs: this is about
accepting work, not doing it. Burst: ``burst`` events at once with the API's default ingest limit; every
one must be accepted or answered 429/503 with Retry-After, and afterwards every accepted event has its
run record and its workflow (none lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from temporalio.service import RPCError

from bench.harness import (
    UNLIMITED_INGEST,
    Comparison,
    Stack,
    Variant,
    api_client,
    each,
    interleaved,
    percentile,
    post_event,
    stack,
    warm_up,
)
from bench.wrk import post_events, wrk
from longhaul.db import Database
from longhaul.models import run_id_for
from longhaul.storage import RunStore
from starters.service import workflow_id_for

GOAL = 0.9
TENANT = "bench"
WRK_VARIANT = "event API (wrk)"


async def run(events: int, connections: int, burst: int, repeats: int) -> Comparison:
    comparison = Comparison("ingest", baseline="raw start_workflow", work=events)
    comparison.notes.update(events=events, connections=connections, goal=GOAL)
    latencies: list[float] = []
    async with stack("ingest") as bench:
        _, url, key = await bench.api(**UNLIMITED_INGEST)
        client = bench.client
        async with api_client(url, key, connections) as http:

            def raw(batch: str) -> Callable[[int], Awaitable[None]]:
                async def one(i: int) -> None:
                    await client.start_workflow(
                        "hello",
                        {"name": f"raw-{i}"},
                        id=f"raw-{batch}-{i}",
                        task_queue="longhaul",
                    )

                return one

            def through_api(batch: str) -> Callable[[int], Awaitable[None]]:
                async def one(i: int) -> None:
                    start = time.perf_counter()
                    body = {"id": f"api-{batch}-{i}", "payload": {"name": f"api-{i}"}}
                    await post_event(http, "/api/events/hello", body)
                    latencies.append(time.perf_counter() - start)

                return one

            wrk_latencies: list[tuple[float, float]] = []

            async def through_wrk(batch: str, count: int, connections: int) -> None:
                result = await post_events(url, "/api/events/hello", key, batch, count, connections)
                if set(result.statuses) != {202}:
                    raise RuntimeError(f"wrk: the API refused events: {result.statuses}")
                wrk_latencies.append((result.p50_ms, result.p99_ms))

            variants: dict[str, Variant] = {"raw start_workflow": each(raw), "event API": each(through_api)}
            if wrk():
                variants[WRK_VARIANT] = through_wrk
            await warm_up(variants, 200, connections)
            latencies.clear()
            wrk_latencies.clear()
            await interleaved(bench, comparison, variants, events, connections, repeats)
        comparison.notes.update(
            ratio=round(comparison.ratio("event API"), 3),
            meets_goal=comparison.ratio("event API") >= GOAL,
            accept_latency_ms={
                "p50": round(percentile(latencies, 50) * 1000, 1),
                "p99": round(percentile(latencies, 99) * 1000, 1),
            },
            accept_latencies_ms=[round(v * 1000, 2) for v in latencies],
        )
        if wrk_latencies:
            comparison.notes.update(
                wrk_ratio=round(comparison.ratio(WRK_VARIANT), 3),
                wrk_meets_goal=comparison.ratio(WRK_VARIANT) >= GOAL,
                wrk_accept_latency_ms={
                    "p50": statistics.median(p50 for p50, _ in wrk_latencies),
                    "p99": statistics.median(p99 for _, p99 in wrk_latencies),
                },
            )
        else:
            comparison.notes["wrk"] = "not installed: measured with the httpx client only"
        comparison.notes["burst"] = await _burst(bench, burst, connections=500)
    return comparison


async def _burst(bench: Stack, count: int, connections: int) -> dict[str, Any]:
    """``count`` events sent at once (``connections`` sockets; the rest wait in the client's pool) to an
    API process with the default ingest limit; then every accepted event's record and workflow is
    looked up, and every refused one checked to have neither."""
    _, url, key = await bench.api("api-default-limits")
    batch = uuid.uuid4().hex[:8]
    statuses: Counter[int] = Counter()
    without_retry_after = resent = 0
    accepted: list[str] = []
    refused: list[str] = []
    # Many small clients, not one pool: httpx's pool scans its waiting requests on every release, which
    # with thousands waiting makes this process, not the API, the bottleneck.
    per_client = 5
    async with contextlib.AsyncExitStack() as clients:
        pool = [
            await clients.enter_async_context(api_client(url, key, per_client, timeout=120))
            for _ in range(max(1, connections // per_client))
        ]

        async def one(i: int) -> None:
            nonlocal without_retry_after, resent
            http = pool[i % len(pool)]
            event_id = f"burst-{batch}-{i}"
            body = {"id": event_id, "payload": {"name": f"b{i}"}}
            for attempt in range(5):  # a dropped connection leaves the outcome unknown: send it again
                try:
                    answer = await http.post("/api/events/hello", json=body)
                    break
                except httpx.TransportError:
                    if attempt == 4:
                        raise
                    resent += 1
            statuses[answer.status_code] += 1
            if answer.status_code == 202:
                accepted.append(event_id)
            else:
                refused.append(event_id)
                if answer.status_code in (429, 503) and "retry-after" not in answer.headers:
                    without_retry_after += 1

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        elapsed = time.perf_counter() - start

    lost, half_written = await _check_outcomes(bench, accepted, refused)
    return {
        "events": count,
        "seconds": round(elapsed, 2),
        "statuses": {str(code): n for code, n in sorted(statuses.items())},
        "refusals_without_retry_after": without_retry_after,
        "resent_after_connection_errors": resent,
        "accepted_without_run": lost,
        "refused_with_record_or_workflow": half_written,
    }


async def _check_outcomes(bench: Stack, accepted: list[str], refused: list[str]) -> tuple[int, int]:
    """How many accepted events lack their run record or workflow, and how many refused ones have one."""
    db = Database(bench.settings().app_database_url)
    store = RunStore(db)
    lost = half_written = 0
    gate = asyncio.Semaphore(50)

    async def check(event_id: str, should_exist: bool) -> None:
        nonlocal lost, half_written
        workflow_id = workflow_id_for("hello", TENANT, event_id)
        async with gate:
            record = await store.get(run_id_for(workflow_id), logs=False)
            try:
                await bench.client.get_workflow_handle(workflow_id).describe()
                started = True
            except RPCError:
                started = False
        if should_exist and not (record and started):
            lost += 1
        if not should_exist and (record or started):
            half_written += 1

    await asyncio.gather(*(check(e, True) for e in accepted), *(check(e, False) for e in refused))
    await db.close()
    return lost, half_written
