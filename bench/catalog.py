"""``LONGHAUL_CATALOG=bench.catalog:BENCH_CATALOG``: longhaul's catalog plus the benchmark pipeline
(``bench.steps``: three activities; ``bench.short-steps``: the same declared short steps; ``bench.fair``
and ``bench.unfair``: a sleeper behind fair share, and behind the plain order; ``bench.stream``: one
activity writing a data stream)."""

from __future__ import annotations

from bench.events import FAIR, SHORT_STEPS, SLEEP, STEPS, STREAM, UNFAIR
from bench.pipelines import (
    SHORT_STEP_ACTIVITIES,
    STEP_ACTIVITIES,
    ShortSteps,
    Sleeper,
    StreamWriter,
    TrackedSteps,
    write_chunks,
)
from longhaul.workflows.catalog import Catalog
from longhaul.workflows.pipeline import FairShare, Pipeline, Subscription, TaskQueue
from workflows.catalog import CATALOG

BENCH = Pipeline(
    name="bench",
    entries=(
        Subscription(STEPS, TrackedSteps),
        Subscription(SHORT_STEPS, ShortSteps),
        Subscription(SLEEP, Sleeper),
        Subscription(FAIR, Sleeper, queue="bench-fair", fair_share=FairShare()),
        Subscription(UNFAIR, Sleeper, queue="bench-unfair"),
        Subscription(STREAM, StreamWriter),
    ),
    queues=(TaskQueue(lambda resources: [*STEP_ACTIVITIES, *SHORT_STEP_ACTIVITIES, write_chunks]),),
    short_steps=SHORT_STEP_ACTIVITIES,
)
BENCH_CATALOG = Catalog(*CATALOG.pipelines, BENCH)
