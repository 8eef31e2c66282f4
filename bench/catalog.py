"""``LONGHAUL_CATALOG=bench.catalog:BENCH_CATALOG``: longhaul's catalog plus the benchmark pipelines."""

from __future__ import annotations

from bench.events import SLEEP, STEPS
from bench.pipelines import STEP_ACTIVITIES, Sleeper, TrackedSteps
from workflows.catalog import CATALOG, Catalog, Subscription

BENCH_CATALOG = Catalog(
    *CATALOG.entries,
    Subscription(STEPS, TrackedSteps),
    Subscription(SLEEP, Sleeper),
    published=CATALOG.published,
    activities=STEP_ACTIVITIES,
)
