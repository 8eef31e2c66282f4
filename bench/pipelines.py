"""The pipelines the benchmarks run: plain temporalio baselines and their longhaul twins.

``bench.steps`` (three trivial activities with a run record and progress: the framework-overhead
benchmark's longhaul variant) and ``bench.sleep`` (one durable timer) are served by ``longhaul worker``
and ``longhaul api`` through :mod:`bench.catalog`. :class:`PlainSteps` and :class:`Empty` are plain
temporalio workflows for the hand-written baselines, run by ``bench/plain_worker.py``.

Kept free of the catalog and of harness imports: Temporal's sandbox re-imports this module (and what it
imports) for every workflow run, so importing the catalog here would re-import every pipeline each time."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from bench.events import ChunksRequested, SleepRequested, StepsRequested
    from longhaul.activities.streams import stream

from longhaul.workflows import registry
from longhaul.workflows.tracking import progress, tracked

STEP_TIMEOUT = timedelta(seconds=30)


@activity.defn
async def fetch(item: str) -> str:
    return f"{item}:fetched"


@activity.defn
async def transform(value: str) -> str:
    return value.upper()


@activity.defn
async def store(value: str) -> str:
    return f"{value}:stored"


@registry.defn(name="bench-plain-steps")
class PlainSteps:
    """The three steps, hand-written temporalio: no run record, no progress."""

    @workflow.run
    async def run(self, request: StepsRequested) -> str:
        value = await workflow.execute_activity(fetch, request.item, start_to_close_timeout=STEP_TIMEOUT)
        value = await workflow.execute_activity(transform, value, start_to_close_timeout=STEP_TIMEOUT)
        return await workflow.execute_activity(store, value, start_to_close_timeout=STEP_TIMEOUT)


@registry.defn(name="bench-steps")
class TrackedSteps:
    """The same three steps as a longhaul pipeline: run record, progress before each step."""

    @workflow.run
    async def run(self, request: StepsRequested) -> str:
        return await tracked(self._steps(request))

    async def _steps(self, request: StepsRequested) -> str:
        await progress(10, "fetching")
        value = await workflow.execute_activity(fetch, request.item, start_to_close_timeout=STEP_TIMEOUT)
        await progress(40, "transforming")
        value = await workflow.execute_activity(transform, value, start_to_close_timeout=STEP_TIMEOUT)
        await progress(70, "storing")
        return await workflow.execute_activity(store, value, start_to_close_timeout=STEP_TIMEOUT)


@registry.defn(name="bench-plain-local-steps")
class PlainLocalSteps:
    """The three steps, hand-written as local activities: the fastest hand-written form on one box."""

    @workflow.run
    async def run(self, request: StepsRequested) -> str:
        value = await workflow.execute_local_activity(
            fetch, request.item, start_to_close_timeout=STEP_TIMEOUT
        )
        value = await workflow.execute_local_activity(transform, value, start_to_close_timeout=STEP_TIMEOUT)
        return await workflow.execute_local_activity(store, value, start_to_close_timeout=STEP_TIMEOUT)


@activity.defn(name="bench.short.fetch")
async def short_fetch(item: str) -> str:
    return f"{item}:fetched"


@activity.defn(name="bench.short.transform")
async def short_transform(value: str) -> str:
    return value.upper()


@activity.defn(name="bench.short.store")
async def short_store(value: str) -> str:
    return f"{value}:stored"


@registry.defn(name="bench-short-steps")
class ShortSteps:
    """The three steps as a longhaul pipeline that declares them short steps (run as local activities),
    called exactly as :class:`TrackedSteps` calls its activities."""

    @workflow.run
    async def run(self, request: StepsRequested) -> str:
        return await tracked(self._steps(request))

    async def _steps(self, request: StepsRequested) -> str:
        await progress(10, "fetching")
        value = await workflow.execute_activity(
            short_fetch, request.item, start_to_close_timeout=STEP_TIMEOUT
        )
        await progress(40, "transforming")
        value = await workflow.execute_activity(short_transform, value, start_to_close_timeout=STEP_TIMEOUT)
        await progress(70, "storing")
        return await workflow.execute_activity(short_store, value, start_to_close_timeout=STEP_TIMEOUT)


@registry.defn(name="bench-empty")
class Empty:
    """One workflow task, no activities: the server's floor for a workflow's cost."""

    @workflow.run
    async def run(self) -> None:
        return None


@registry.defn(name="bench-sleeper")
class Sleeper:
    """Sleeps on a durable timer and returns how late (seconds) it woke."""

    @workflow.run
    async def run(self, request: SleepRequested) -> float:
        due = workflow.now() + timedelta(seconds=request.seconds)
        await workflow.sleep(timedelta(seconds=request.seconds))
        return (workflow.now() - due).total_seconds()


@activity.defn(name="bench.write_chunks")
async def write_chunks(request: ChunksRequested) -> float:
    """Write the chunks to the run's stream ``chunks``; the seconds it took. Each chunk starts with its
    wall-clock time of writing (``time.time()``), padded to ``size``."""
    import asyncio
    import time
    from collections.abc import AsyncIterator

    out = stream("chunks")

    def chunk(n: int) -> str:
        return f"{time.time():.6f} {n} ".ljust(request.size, "x")

    started = time.perf_counter()
    if request.mode == "pipe":

        async def chunks() -> AsyncIterator[str]:
            for n in range(request.count):
                yield chunk(n)
                await asyncio.sleep(request.interval)

        await out.pipe(chunks())
    else:
        for n in range(request.count):
            await out.append(chunk(n))
            if request.interval:
                await asyncio.sleep(request.interval)
    return time.perf_counter() - started


@registry.defn(name="bench-stream-writer")
class StreamWriter:
    """Runs :func:`write_chunks` (one activity) and returns its seconds."""

    @workflow.run
    async def run(self, request: ChunksRequested) -> float:
        return await tracked(
            workflow.execute_activity(write_chunks, request, start_to_close_timeout=timedelta(minutes=30))
        )


STEP_ACTIVITIES = (fetch, transform, store)
SHORT_STEP_ACTIVITIES = (short_fetch, short_transform, short_store)
BASELINE_WORKFLOWS = (PlainSteps, PlainLocalSteps, Empty)
