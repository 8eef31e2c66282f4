"""One box at full speed: three trivial steps, event → completed, against hand-written temporalio.

Variants, measured side by side (interleaved) on one embedded server:

- hand-written temporalio, 3 activities: ``client.start_workflow`` to a plain Worker in its own process
  (bench/plain_worker.py);
- hand-written, 3 local activities + eager start: a Worker in this process, started with
  ``request_eager_start`` by the client it polls with (the fastest hand-written form on one box);
- longhaul serve: ``POST /api/events/bench.short-steps`` to ``longhaul serve`` (API, dispatcher and
  worker in one process): the event validated and queued, the run recorded, started eagerly, progress
  before each of its three steps, which the pipeline declares short (local activities), the record
  completed.

Throughput: ``runs`` workflows, ``in_flight`` at a time, runs / elapsed. Latency: ``sequential`` runs one
after another on the idle stack, from the send (the API's answer, for longhaul) to the result. Goals
(#28): longhaul ≥ 1.8 times the plain activities, ≥ 0.9 times local + eager; latency p50 ≤ 1.5 times theirs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from temporalio.worker import Worker

from bench.harness import (
    UNLIMITED_INGEST,
    Comparison,
    One,
    api_client,
    each,
    interleaved,
    percentile,
    sent_to_longhaul,
    stack,
    started_by_hand,
    warm_up,
)
from bench.pipelines import STEP_ACTIVITIES, PlainLocalSteps, PlainSteps, ShortSteps
from longhaul.workflows.pipeline import workflow_name

GOAL_PLAIN = 1.8
GOAL_LOCAL_EAGER = 0.9
GOAL_LATENCY = 1.5  # longhaul's p50 at most this many times the local + eager p50
PLAIN_QUEUE = "bench-plain"
EAGER_QUEUE = "bench-eager"
PLAIN = "hand-written, 3 activities"
LOCAL_EAGER = "hand-written, 3 local activities + eager start"
LONGHAUL = "longhaul serve (short steps, eager start)"


async def run(runs: int, in_flight: int, repeats: int, sequential: int) -> Comparison:
    comparison = Comparison("throughput", baseline=PLAIN, work=runs)
    comparison.notes.update(runs=runs, in_flight=in_flight, sequential=sequential)
    async with stack("throughput") as bench:
        await bench.plain_worker(PLAIN_QUEUE)
        _, url, key = await bench.api("serve", command="serve", **UNLIMITED_INGEST)
        client = bench.client
        eager_worker = Worker(
            client,
            task_queue=EAGER_QUEUE,
            workflows=[PlainLocalSteps],
            activities=list(STEP_ACTIVITIES),
            max_concurrent_workflow_tasks=in_flight,
        )
        async with eager_worker, api_client(url, key, in_flight) as http:
            makers: dict[str, Callable[[str], One]] = {
                PLAIN: started_by_hand(client, workflow_name(PlainSteps), PLAIN_QUEUE),
                LOCAL_EAGER: started_by_hand(client, workflow_name(PlainLocalSteps), EAGER_QUEUE, eager=True),
                LONGHAUL: sent_to_longhaul(http, client, "bench.short-steps", workflow_name(ShortSteps)),
            }
            variants = {variant: each(make) for variant, make in makers.items()}
            await warm_up(variants, min(runs, 50), in_flight)
            await interleaved(bench, comparison, variants, runs, in_flight, repeats)
            await _latencies(comparison, makers, sequential)
    longhaul_vs_plain = comparison.ratio(LONGHAUL)
    longhaul_vs_eager = comparison.ratio(LONGHAUL, LOCAL_EAGER)
    comparison.notes.update(
        ratio_to_plain=round(longhaul_vs_plain, 3),
        ratio_to_local_eager=round(longhaul_vs_eager, 3),
        goals={"to_plain": GOAL_PLAIN, "to_local_eager": GOAL_LOCAL_EAGER, "latency_p50": GOAL_LATENCY},
        meets_goals=longhaul_vs_plain >= GOAL_PLAIN and longhaul_vs_eager >= GOAL_LOCAL_EAGER,
    )
    return comparison


async def _latencies(
    comparison: Comparison, makers: dict[str, Callable[[str], One]], sequential: int
) -> None:
    """Each variant's runs one at a time on the idle stack, interleaved run by run: p50 and p99 in ms."""
    seconds: dict[str, list[float]] = {variant: [] for variant in makers}
    ones = {variant: make(f"latency-{time.monotonic_ns()}") for variant, make in makers.items()}
    for i in range(sequential):
        for variant, one in ones.items():
            start = time.perf_counter()
            await one(i)
            seconds[variant].append(time.perf_counter() - start)
    latency = {
        variant: {
            "p50_ms": round(percentile(values, 50) * 1000, 1),
            "p99_ms": round(percentile(values, 99) * 1000, 1),
        }
        for variant, values in seconds.items()
    }
    ratio = latency[LONGHAUL]["p50_ms"] / latency[LOCAL_EAGER]["p50_ms"]
    comparison.notes.update(latency=latency, latency_p50_ratio_to_local_eager=round(ratio, 3))
