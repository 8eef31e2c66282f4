"""``LONGHAUL_CATALOG=bench.catalog:BENCH_CATALOG``: longhaul's catalog plus the benchmark pipeline."""

from __future__ import annotations

from bench.events import SLEEP, STEPS
from bench.pipelines import STEP_ACTIVITIES, Sleeper, TrackedSteps
from longhaul.workflows.catalog import Catalog
from longhaul.workflows.pipeline import Pipeline, Subscription, TaskQueue
from workflows.catalog import CATALOG

BENCH = Pipeline(
    name="bench",
    entries=(Subscription(STEPS, TrackedSteps), Subscription(SLEEP, Sleeper)),
    queues=(TaskQueue(lambda resources: STEP_ACTIVITIES),),
)
BENCH_CATALOG = Catalog(*CATALOG.pipelines, BENCH)
