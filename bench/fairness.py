"""Fair share (#29): tenant A sends ``backlog`` runs, then tenant B sends ``late``; how long B waits while
A's backlog drains, and how fast A's drains, with fair share against the plain order.

``bench.fair`` (a subscription with ``FairShare()``: tenants take turns) and ``bench.unfair`` (priority,
then arrival) make the same run, on ``longhaul api`` and its dispatcher. No worker runs: what is measured
is the run queue, from accepted (the run's record written) to started (its workflow's start time in
Temporal); A's drain ends when the dispatcher noted its last start (``dispatched_at``, app storage). B's
wait is measured first on the idle stack; the goal is B's p99 under A's backlog ≤ twice its idle p99 + one
dispatch cycle (a claim of the dispatcher's batch and its starts, at A's measured drain rate). A's drain
(first accepted → last started) with fair share against the plain order: goal ≥ 0.95.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
from sqlalchemy import select
from temporalio.client import Client

from bench.harness import UNLIMITED_INGEST, Comparison, Stack, api_client, percentile, stack
from longhaul.db import Database
from longhaul.keys import KeyStore
from longhaul.records import RUNS
from longhaul.server.dispatcher import BATCH
from longhaul.server.envelopes import MAX_BATCH

GOAL_DRAIN = 0.95
FAIR = "fair share (tenants take turns)"
UNFAIR = "plain order (priority, then arrival)"
EVENTS = {FAIR: "bench.fair", UNFAIR: "bench.unfair"}


async def run(backlog: int, late: int, repeats: int) -> Comparison:
    comparison = Comparison("fairness", baseline=UNFAIR, work=backlog)
    comparison.notes.update(backlog=backlog, late=late, dispatcher_batch=BATCH)
    async with stack("fairness") as bench:
        _, url, key_a = await bench.api(**UNLIMITED_INGEST)
        key_b = await _key(bench, "tenant-b")
        db = Database(bench.settings().app_database_url)
        try:
            async with api_client(url, key_a, 8) as a, api_client(url, key_b, 8) as b:
                idle = [
                    wait
                    for _ in range(late)
                    for _, wait in await _waits(db, bench.client, await _send(b, EVENTS[FAIR], 1))
                ]
                waits: dict[str, list[float]] = {FAIR: [], UNFAIR: []}
                claimed: dict[str, list[float]] = {FAIR: [], UNFAIR: []}
                for repeat in range(repeats):
                    for variant in (FAIR, UNFAIR) if repeat % 2 == 0 else (UNFAIR, FAIR):
                        sent = await _backlogged(db, bench.client, a, b, EVENTS[variant], backlog, late)
                        drain, late_waits = sent
                        comparison.add(variant, drain)
                        claimed[variant] += [until_claimed for until_claimed, _ in late_waits]
                        waits[variant] += [until_started for _, until_started in late_waits]
        finally:
            await db.close()
    drain_rate = comparison.rate(FAIR)
    cycle = BATCH / drain_rate
    goal = 2 * percentile(idle, 99) + cycle
    for variant, values in waits.items():
        comparison.notes[f"b_wait_s {variant}"] = _summary(values)
        comparison.notes[f"b_until_claimed_s {variant}"] = _summary(claimed[variant])
    comparison.notes.update(
        b_wait_idle_s=_summary(idle),
        dispatch_cycle_s=round(cycle, 3),
        b_p99_goal_s=round(goal, 3),
        b_p99_meets_goal=percentile(waits[FAIR], 99) <= goal,
        drain_ratio=round(comparison.ratio(FAIR), 3),
        drain_meets_goal=comparison.ratio(FAIR) >= GOAL_DRAIN,
    )
    return comparison


def _summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, 50), 3), "p99": round(percentile(values, 99), 3)}


async def _key(bench: Stack, tenant: str) -> str:
    db = Database(bench.settings().app_database_url)
    try:
        _, key = await KeyStore(db).create(tenant, "benchmark")
    finally:
        await db.close()
    return key


async def _send(http: httpx.AsyncClient, event: str, count: int) -> list[str]:
    """``count`` events in batches (as a busy tenant sends them); the ids of their runs."""
    tag = uuid.uuid4().hex[:8]
    run_ids: list[str] = []
    for first in range(0, count, MAX_BATCH):
        items = [
            {"name": event, "id": f"{tag}-{i}", "payload": {"seconds": 1}}
            for i in range(first, min(count, first + MAX_BATCH))
        ]
        answer = (await http.post("/api/events", json={"events": items})).raise_for_status()
        run_ids += [run["run_id"] for accepted in answer.json()["results"] for run in accepted["runs"]]
    return run_ids


async def _started(
    db: Database, run_ids: list[str], patience: float = 600
) -> list[tuple[datetime, datetime]]:
    """(accepted, started) of each run, once all have started."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while loop.time() < deadline:
        times: list[tuple[datetime, datetime]] = []
        async with db.engine.connect() as conn:
            for first in range(0, len(run_ids), 500):
                chunk = run_ids[first : first + 500]
                rows = await conn.execute(
                    select(RUNS.c.created_at, RUNS.c.dispatched_at).where(RUNS.c.id.in_(chunk))
                )
                times += [(accepted, started) for accepted, started in rows if started is not None]
        if len(times) == len(run_ids):
            return times
        await asyncio.sleep(0.2)
    raise RuntimeError(f"runs not started within {patience} s")


async def _waits(db: Database, client: Client, run_ids: list[str]) -> list[tuple[float, float]]:
    """Accepted → claimed and accepted → started of each run, once all have started: the start time of
    its workflow in Temporal (the dispatcher notes its starts once the whole claimed batch is started, up
    to a cycle later)."""
    await _started(db, run_ids)
    columns = (RUNS.c.created_at, RUNS.c.claimed_at, RUNS.c.workflow_id)
    async with db.engine.connect() as conn:
        rows = (await conn.execute(select(*columns).where(RUNS.c.id.in_(run_ids)))).all()
    waits = []
    for accepted, claimed, workflow_id in rows:
        started = (await client.get_workflow_handle(workflow_id).describe()).start_time
        since = accepted.replace(tzinfo=UTC)
        waits.append(
            ((claimed.replace(tzinfo=UTC) - since).total_seconds(), (started - since).total_seconds())
        )
    return waits


async def _backlogged(
    db: Database,
    client: Client,
    a: httpx.AsyncClient,
    b: httpx.AsyncClient,
    event: str,
    backlog: int,
    late: int,
) -> tuple[float, list[tuple[float, float]]]:
    """A's ``backlog``, then B's ``late`` runs: A's drain time (first accepted → last noted started) and
    each of B's waits (until claimed, until started)."""
    a_runs = await _send(a, event, backlog)
    b_waits = await _waits(db, client, await _send(b, event, late))
    a_times = await _started(db, a_runs)
    drain = (max(s for _, s in a_times) - min(c for c, _ in a_times)).total_seconds()
    return drain, b_waits
