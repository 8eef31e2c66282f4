"""The ``demo`` pipeline: one small workflow behind each flow-control rule of the run queue — debounce,
singleton, throttle, rate limit, per-key concurrency — to try them (docs/events.md, "Try each rule")."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.demo import (
        DEMO_CONCURRENCY,
        DEMO_DEBOUNCE,
        DEMO_RATE_LIMIT,
        DEMO_SINGLETON,
        DEMO_THROTTLE,
        DemoWork,
    )

from longhaul.sdk import (
    Concurrency,
    Debounce,
    Pipeline,
    RateLimit,
    Singleton,
    Subscription,
    Throttle,
    defn,
    progress,
    tracked,
)


class DemoResult(BaseModel):
    key: str
    note: str


@defn(name="demo-work")
class DemoWorkflow:
    """Works ``seconds`` on a durable timer, reporting progress, and answers which event it ran for."""

    @workflow.run
    async def run(self, work: DemoWork) -> DemoResult:
        return await tracked(self._work(work))

    async def _work(self, work: DemoWork) -> DemoResult:
        await progress(10, f"working on {work.key} ({work.note or 'no note'})")
        await workflow.sleep(timedelta(seconds=work.seconds), summary="the work")
        return DemoResult(key=work.key, note=work.note)


DEMO = Pipeline(
    name="demo",
    entries=(
        # Events of a key less than 5 s apart: one run, with the last payload, at most 20 s after the first.
        Subscription(
            DEMO_DEBOUNCE,
            DemoWorkflow,
            key="key",
            queue="demo-debounce",
            debounce=Debounce(timedelta(seconds=5), "key", max_delay=timedelta(seconds=20)),
        ),
        # One open run per key: another event is answered with it.
        Subscription(
            DEMO_SINGLETON, DemoWorkflow, key="key", queue="demo-singleton", singleton=Singleton("key")
        ),
        # Starts of a key spread out: one every 5 s.
        Subscription(
            DEMO_THROTTLE,
            DemoWorkflow,
            key="key",
            queue="demo-throttle",
            throttle=Throttle(1, timedelta(seconds=5), "key"),
        ),
        # At most 2 starts of a key a minute; the rest wait.
        Subscription(
            DEMO_RATE_LIMIT,
            DemoWorkflow,
            key="key",
            queue="demo-rate-limit",
            rate_limit=RateLimit(2, timedelta(minutes=1), "key"),
        ),
        # At most 1 run of a key at once.
        Subscription(
            DEMO_CONCURRENCY,
            DemoWorkflow,
            key="key",
            queue="demo-concurrency",
            concurrency=(Concurrency(1, key="key"),),
        ),
    ),
)
