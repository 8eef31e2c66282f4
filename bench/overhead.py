"""Framework overhead: the same three-step pipeline hand-written in temporalio and through longhaul.

(a) ``client.start_workflow`` + a plain Worker (bench/plain_worker.py), no run record; (b) ``POST
/api/events/bench.steps`` to ``longhaul api``, run by ``longhaul worker``: the event validated, the run
recorded, progress before each step, the record completed. Both keep ``in_flight`` runs going (start, then
wait for the result) until ``runs`` finished; the rate is runs / elapsed. Goal: b/a ≥ 0.9.
"""

from __future__ import annotations

from bench.harness import (
    UNLIMITED_INGEST,
    Comparison,
    api_client,
    each,
    interleaved,
    sent_to_longhaul,
    stack,
    started_by_hand,
    warm_up,
)
from bench.pipelines import PlainSteps, TrackedSteps
from longhaul.workflows.pipeline import workflow_name

GOAL = 0.9  # decided in #15 (was 0.95)
PLAIN_QUEUE = "bench-plain"


async def run(runs: int, in_flight: int, repeats: int) -> Comparison:
    comparison = Comparison("overhead", baseline="hand-written temporalio", work=runs)
    comparison.notes.update(runs=runs, in_flight=in_flight, goal=GOAL)
    async with stack("overhead") as bench:
        await bench.plain_worker(PLAIN_QUEUE)
        await bench.worker()
        _, url, key = await bench.api(**UNLIMITED_INGEST)
        client = bench.client
        async with api_client(url, key, in_flight) as http:
            variants = {
                "hand-written temporalio": each(
                    started_by_hand(client, workflow_name(PlainSteps), PLAIN_QUEUE)
                ),
                "longhaul event API": each(
                    sent_to_longhaul(http, client, "bench.steps", workflow_name(TrackedSteps))
                ),
            }
            await warm_up(variants, min(runs, 50), in_flight)
            await interleaved(bench, comparison, variants, runs, in_flight, repeats)
    ratio = comparison.ratio("longhaul event API")
    comparison.notes.update(ratio=round(ratio, 3), meets_goal=ratio >= GOAL)
    return comparison
