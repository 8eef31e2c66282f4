"""Framework overhead: the same three-step pipeline hand-written in temporalio and through longhaul.

(a) ``client.start_workflow`` + a plain Worker (bench/plain_worker.py), no run record; (b) ``POST
/api/events/bench.steps`` to ``longhaul api``, run by ``longhaul worker``: the event validated, the run
recorded, progress before each step, the record completed. Both keep ``in_flight`` runs going (start, then
wait for the result) until ``runs`` finished; the rate is runs / elapsed. Goal: b/a ≥ 0.95.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import httpx

from bench.events import StepsRequested
from bench.harness import Comparison, keep_in_flight, post_event, stack
from bench.pipelines import PlainSteps, TrackedSteps
from starters.service import workflow_id_for
from workflows.catalog import workflow_name

GOAL = 0.95
PLAIN_QUEUE = "bench-plain"


async def run(runs: int, in_flight: int, repeats: int) -> Comparison:
    comparison = Comparison("overhead", baseline="hand-written temporalio", work=runs)
    comparison.notes.update(runs=runs, in_flight=in_flight, goal=GOAL)
    async with stack("overhead") as bench:
        await bench.plain_worker(PLAIN_QUEUE)
        await bench.worker()
        _, url, key = await bench.api(ingest_rate_limit="1000000", ingest_burst="1000000")
        client = bench.client
        tracked_name = workflow_name(TrackedSteps)
        limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as http:

            def hand_written(batch: str) -> Callable[[int], Awaitable[None]]:
                async def one(i: int) -> None:
                    handle = await client.start_workflow(
                        PlainSteps.run,
                        StepsRequested(item=f"item-{i}"),
                        id=f"plain-{batch}-{i}",
                        task_queue=PLAIN_QUEUE,
                    )
                    await handle.result()

                return one

            def through_longhaul(batch: str) -> Callable[[int], Awaitable[None]]:
                async def one(i: int) -> None:
                    event_id = f"steps-{batch}-{i}"
                    body = {"id": event_id, "payload": {"item": f"item-{i}"}}
                    await post_event(http, "/api/events/bench.steps", body)
                    await client.get_workflow_handle(
                        workflow_id_for(tracked_name, "bench", event_id)
                    ).result()

                return one

            variants = {"hand-written temporalio": hand_written, "longhaul event API": through_longhaul}
            for make in variants.values():  # warm-up, unmeasured: connections, caches, the sandbox
                await keep_in_flight(min(runs, 50), in_flight, make(f"warm-{uuid.uuid4().hex[:6]}"))
            for repeat in range(repeats):
                order = list(variants.items())
                for variant, make in order if repeat % 2 == 0 else reversed(order):
                    batch = keep_in_flight(runs, in_flight, make(uuid.uuid4().hex[:8]))
                    await bench.measure(comparison, variant, batch)
    ratio = comparison.ratio("longhaul event API")
    comparison.notes.update(ratio=round(ratio, 3), meets_goal=ratio >= GOAL)
    return comparison
