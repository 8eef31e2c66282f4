"""Sleepers: many workflows each waiting on a durable timer, held by ``longhaul worker`` processes.

``count`` ``bench-sleeper`` workflows are started (``rate`` per second, by default half the rate at which
the server and a plain worker start and finish empty workflows, measured first in the same run;
``concurrency`` start calls at a time); each sleeps ``seconds`` and returns how late its timer fired
(workflow time after the sleep minus the due time: server timer delay plus the wait for the worker to run
the woken workflow). The worker's resident memory is sampled every second from the first start to the last
wake-up. Goals: each worker's RSS below 500 MB and p99 lateness below 2 s on this machine. ``--workers 2``
(the setting #15 decided for the goals) shares the workflows between two workers; one worker's figure is
kept beside it.

Timers fire at the rate the workflows were started, so the start rate is the wake rate the worker and
the server must keep up with: unpaced (``--rate 0``) it is as fast as the server accepts starts, which
measures the backlog of a stampede rather than the timers. Paced at half the empty-workflow rate (#28),
starting 10,000 may take longer than their 120 s timers, so the first wake before the last start.

The memory goal is each worker's RSS over the whole run (#28; #15 took it while all sleep, the largest
sample from the last start to the first wake-up, which is reported beside it when there is such a time).
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid

from bench.events import SleepRequested
from bench.harness import Comparison, Stack, keep_in_flight, percentile, stack
from bench.pipelines import Empty, Sleeper

RSS_GOAL_MB = 500
LATENESS_GOAL_S = 2.0


async def run(
    count: int, seconds: float, concurrency: int, rate: float | None, cache: int | None, workers: int = 1
) -> Comparison:
    # Named apart ("sleepers_workers2"), so the report keeps the one-worker figure beside it.
    name = "sleepers" if workers == 1 else f"sleepers_workers{workers}"
    comparison = Comparison(name, baseline="timer lateness")
    async with stack("sleepers") as bench:
        empty_rate = None
        if rate is None:  # half the rate this server and a worker start and finish empty workflows
            empty_rate = await _empty_rate(bench, concurrency, min(1000, max(100, count // 10)))
            rate = empty_rate / 2
        settings = {"max_cached_workflows": str(cache)} if cache is not None else {}
        running = [await bench.worker(f"worker-{n + 1}", **settings) for n in range(workers)]
        idle_rss = max(worker.rss_mb() for worker in running)
        samples: list[tuple[float, float]] = []  # (seconds since the first start, largest worker RSS MB)
        finished = asyncio.Event()
        started_at = time.perf_counter()

        def rss_mb() -> float:
            return max(worker.rss_mb() for worker in running)

        async def sample_rss() -> None:
            while not finished.is_set():
                samples.append((time.perf_counter() - started_at, rss_mb()))
                await asyncio.sleep(1)

        sampler = asyncio.create_task(sample_rss())
        batch = uuid.uuid4().hex[:8]
        gate = asyncio.Semaphore(concurrency)

        async def start(i: int) -> str:
            if rate > 0:  # paced: workflow i starts (and so wakes) at i / rate seconds
                await asyncio.sleep(max(0.0, started_at + i / rate - time.perf_counter()))
            async with gate:
                handle = await bench.client.start_workflow(
                    Sleeper.run,
                    SleepRequested(seconds=seconds),
                    id=f"sleeper-{batch}-{i}",
                    task_queue="longhaul",
                )
                return handle.id

        ids = await asyncio.gather(*(start(i) for i in range(count)))
        start_seconds = time.perf_counter() - started_at
        rss_all_started = rss_mb()

        async def lateness(workflow_id: str) -> float:
            async with gate:
                late: float = await bench.client.get_workflow_handle(workflow_id).result()
                return late

        late = await asyncio.gather(*(lateness(i) for i in ids))
        finished.set()
        await sampler
    rss = [mb for _, mb in samples]
    peak = max(rss, default=rss_all_started)
    # All asleep from the last start until the first timer is due (never, if starting took longer).
    asleep = [rss_all_started, *(mb for at, mb in samples if start_seconds <= at < seconds)]
    asleep_peak = max(asleep) if start_seconds < seconds else None
    comparison.seconds["timer lateness"] = list(late)
    comparison.notes.update(
        workflows=count,
        workers=workers,
        sleep_seconds=seconds,
        start_rate_per_s=round(rate, 1) if rate else "unpaced",
        empty_workflow_rate_per_s=round(empty_rate, 1) if empty_rate else "not measured",
        max_cached_workflows=cache if cache is not None else "default (1000)",
        start_seconds=round(start_seconds, 1),
        lateness_s={
            "p50": round(percentile(late, 50), 3),
            "p99": round(percentile(late, 99), 3),
            "max": round(max(late), 3),
            "mean": round(statistics.fmean(late), 3),
        },
        worker_rss_mb={  # of the largest worker at each sample
            "idle": round(idle_rss, 1),
            "all_started": round(rss_all_started, 1),
            "asleep_peak": round(asleep_peak, 1) if asleep_peak is not None else None,
            "peak": round(peak, 1),
        },
        goals={"rss_mb_below": RSS_GOAL_MB, "p99_lateness_s_below": LATENESS_GOAL_S},
        # The peak of the whole run (at least the peak while all sleep): paced at half the empty-workflow
        # rate, starting may take longer than the timers, and then they never all sleep at once.
        meets_goal=peak < RSS_GOAL_MB and percentile(late, 99) < LATENESS_GOAL_S,
        rss_samples_mb=[round(mb, 1) for mb in rss],
    )
    return comparison


EMPTY_QUEUE = "bench-empty"


async def _empty_rate(bench: Stack, in_flight: int, count: int) -> float:
    """Empty workflows (one workflow task each) started and finished per second by a plain worker,
    ``in_flight`` at a time: what the server can start, the pace the sleepers are then started at."""
    plain = await bench.plain_worker(EMPTY_QUEUE)
    batch = uuid.uuid4().hex[:8]

    async def one(i: int) -> None:
        await bench.client.execute_workflow(Empty.run, id=f"empty-{batch}-{i}", task_queue=EMPTY_QUEUE)

    await keep_in_flight(min(count, 100), in_flight, one)  # warm up
    started = time.perf_counter()
    await keep_in_flight(count, in_flight, one)
    elapsed = time.perf_counter() - started
    plain.stop()  # its CPU and memory are not the sleepers'
    return count / elapsed
