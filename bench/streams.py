"""``GET /api/runs`` while many run streams are open, against the same with none.

A real ``longhaul api`` process on SQLite (as ``longhaul dev`` has it) with 2,000 runs of the tenant, 200
of them running and updated by a writer as workers would (progress every second each). In each
measurement a second process holds ``streams`` server-sent event streams open (half follow a running
run, half a tag) — or none — and the driver then asks for the runs list one request at a time. The
ratio of the medians (p50 with streams / p50 without) says what open streams cost everyone else; the
goal is at most 2.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import insert, update

from bench.harness import Comparison, percentile, stack

RUNS = 2_000
RUNNING = 200
TAGS = 50
WRITES_PER_SECOND = RUNNING  # each running run's progress once a second


async def _fill(settings: Any) -> list[str]:
    """The tenant ``bench``'s runs; returns the ids of those running."""
    from longhaul.db import Database, utcnow
    from longhaul.migrations import upgrade
    from longhaul.records import RunRow, RunTagRow

    db = Database(settings.app_database_url)
    await upgrade(db)
    now, rng = utcnow(), random.Random(7)
    runs, tags, running = [], [], []
    for index in range(RUNS):
        run_id = f"run_{uuid.UUID(int=rng.getrandbits(128)).hex}"
        created = now - timedelta(seconds=RUNS - index)
        status = "running" if index >= RUNS - RUNNING else "completed"
        if status == "running":
            running.append(run_id)
        runs.append({
            "id": run_id, "tenant": "bench", "workflow": "hello", "event": "bench.event",
            "workflow_id": f"hello/bench/{run_id}", "event_id": f"evt_{run_id}", "business_key": None,
            "generation": 1, "status": status, "priority": 3, "progress": 0, "input": {"n": index},
            "stage": "working", "output": None, "error": None, "attempts": 1, "created_at": created,
            "started_at": created, "finished_at": None if status == "running" else created,
            "updated_at": created, "run_metadata": {},
        })  # fmt: skip
        tags.append({"run_id": run_id, "tag": f"bench:{index % TAGS}"})
    async with db.engine.begin() as conn:
        for start in range(0, RUNS, 1000):
            await conn.execute(insert(RunRow), runs[start : start + 1000])
            await conn.execute(insert(RunTagRow), tags[start : start + 1000])
    await db.close()
    return running


async def _write_progress(settings: Any, running: list[str], stop: asyncio.Event) -> None:
    """Move each running run's progress about once a second, a tenth of them every 100 ms."""
    from longhaul.db import Database, utcnow
    from longhaul.records import RunRow

    db = Database(settings.app_database_url)
    tick, slice_size = 0, max(1, len(running) // 10)
    try:
        while not stop.is_set():
            tick += 1
            batch = running[(tick % 10) * slice_size : (tick % 10 + 1) * slice_size]
            async with db.engine.begin() as conn:
                await conn.execute(
                    update(RunRow)
                    .where(RunRow.id.in_(batch))
                    .values(progress=tick % 100, stage=f"step {tick}", updated_at=utcnow())
                )
            await asyncio.sleep(0.1)
    finally:
        await db.close()


def _hold_streams(url: str, key: str, paths: list[str], ready: Any, stop: Any) -> None:
    """In a process of its own: open every stream, say so, read them until told to stop."""

    async def hold() -> None:
        limits = httpx.Limits(max_connections=len(paths) + 10, max_keepalive_connections=0)
        headers = {"Authorization": f"Bearer {key}"}
        opened = 0

        async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=None) as http:

            async def follow(path: str) -> None:
                nonlocal opened
                async with http.stream("GET", path) as response:
                    assert response.status_code == 200, response.status_code
                    opened += 1
                    async for _ in response.aiter_lines():
                        pass

            tasks = [asyncio.create_task(follow(path)) for path in paths]
            while opened < len(paths):
                if failed := [t for t in tasks if t.done() and t.exception()]:
                    raise RuntimeError(f"a stream failed: {failed[0].exception()!r}")
                await asyncio.sleep(0.05)
            ready.set()
            await asyncio.to_thread(stop.wait)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(hold())


async def _latencies(http: httpx.AsyncClient, requests: int) -> list[float]:
    took = []
    for _ in range(requests):
        start = time.perf_counter()
        response = await http.get("/api/runs", params={"limit": "20"})
        took.append(time.perf_counter() - start)
        assert response.status_code == 200, response.text[:300]
    return took


async def run(streams: int, requests: int, repeats: int) -> Comparison:
    loaded = f"{streams} streams open"
    comparison = Comparison("streams", baseline="no streams")
    all_latencies: dict[str, list[float]] = {"no streams": [], loaded: []}
    context = multiprocessing.get_context("spawn")
    async with stack("streams") as bench:
        running = await _fill(bench.settings())
        api, url, key = await bench.api(api_dispatcher="false")
        paths = [
            f"/api/runs/{running[i % RUNNING]}/stream" if i % 2 else f"/api/runs/stream?tag=bench:{i % TAGS}"
            for i in range(streams)
        ]
        stop_writing = asyncio.Event()
        writer = asyncio.create_task(_write_progress(bench.settings(), running, stop_writing))
        headers = {"Authorization": f"Bearer {key}"}
        try:
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
                await _latencies(http, 20)  # warm: connections, caches
                for repeat in range(repeats):
                    order = [0, streams] if repeat % 2 == 0 else [streams, 0]
                    for count in order:
                        variant = loaded if count else "no streams"
                        ready, stop = context.Event(), context.Event()
                        holder = context.Process(
                            target=_hold_streams, args=(url, key, paths[:count], ready, stop), daemon=True
                        )
                        holder.start()
                        while not ready.is_set():
                            if not holder.is_alive():
                                raise RuntimeError("the stream holder died")
                            await asyncio.sleep(0.1)
                        await asyncio.sleep(2)  # the streams past their first events
                        before = bench.cpu_seconds()
                        took = await _latencies(http, requests)
                        comparison.add(variant, percentile(took, 50))
                        comparison.add_cpu(variant, before, bench.cpu_seconds())
                        all_latencies[variant] += took
                        stop.set()
                        holder.join(30)
        finally:
            stop_writing.set()
            await writer
            api.stop()
    comparison.notes["latency ms (all requests): p50 / p99 / max"] = {
        variant: [round(percentile(took, q) * 1000, 1) for q in (50, 99, 100)]
        for variant, took in all_latencies.items()
    }
    comparison.notes["p50 ratio (with streams / without; goal <= 2)"] = round(
        comparison.median(loaded) / comparison.median("no streams"), 2
    )
    comparison.notes["setup"] = {
        "runs": RUNS, "running, each updated every second": RUNNING, "streams": streams,
        "requests per measurement": requests,
    }  # fmt: skip
    return comparison
