"""``LONGHAUL_CATALOG=bench.catalog:BENCH_CATALOG``: longhaul's catalog plus the benchmark pipelines."""

from __future__ import annotations

from bench.pipelines import SLEEP, STEP_ACTIVITIES, STEPS, Sleeper, TrackedSteps
from workflows.catalog import CATALOG, Catalog, Subscription

BENCH_CATALOG = Catalog(
    *CATALOG.entries,
    Subscription(STEPS, TrackedSteps),
    Subscription(SLEEP, Sleeper),
    published=CATALOG.published,
    activities=STEP_ACTIVITIES,
)
