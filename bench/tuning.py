"""Tuning what the embedded server and longhaul's processes are given (#28, part 4), each knob beside the
defaults in one run.

Two workloads, each ``runs`` three-step workflows with ``in_flight`` at a time, event API → completed:

- **serve**: ``bench.short-steps`` to ``longhaul serve`` (short steps as local activities, eager start);
- **split**: ``bench.steps`` to ``longhaul api`` run by a ``longhaul worker`` (plain activities), as a
  scaled-out deployment runs.

Every knob gets its own serve, API and worker processes (own task queue, own app storage). A knob of the
server is measured on a fresh server of its own beside the defaults on another fresh one (a server's
database grows with every run it keeps: beside the used one, a fresh server would win by that alone). One
knob at a time is up beside the defaults' processes, and the two are measured interleaved, so each knob's
ratio to the defaults is measured side by side (the pooled medians of the defaults' rows are across the
whole run). The knobs a process takes are applied by :mod:`bench.tuned`; the server's are its command line.
"""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from bench.harness import (
    UNLIMITED_INGEST,
    Comparison,
    One,
    Stack,
    api_client,
    each,
    sent_to_longhaul,
    stack,
    warm_up,
)
from bench.pipelines import ShortSteps, TrackedSteps
from longhaul.workflows.pipeline import workflow_name

DEFAULTS = "defaults"


@dataclass(frozen=True)
class Knob:
    """One candidate: what it changes, in words, and the server arguments it needs (if any)."""

    description: str
    server_args: tuple[str, ...] = ()


def _pragmas(*pragmas: str) -> tuple[str, ...]:
    return tuple(arg for pragma in pragmas for arg in ("--sqlite-pragma", pragma))


KNOBS: dict[str, Knob] = {
    DEFAULTS: Knob("longhaul's defaults"),
    "server-sqlite-cache": Knob(
        "server SQLite: 64 MB page cache, 256 MB mmap, temp tables in memory",
        _pragmas("cache_size=-65536", "mmap_size=268435456", "temp_store=memory"),
    ),
    "server-eager-activities": Knob(
        "server: eager activity execution (system.enableActivityEagerExecution)",
        ("--dynamic-config-value", "system.enableActivityEagerExecution=true"),
    ),
    "app-sqlite-cache": Knob("app storage SQLite: 64 MB page cache, 256 MB mmap, temp tables in memory"),
    "pollers-autoscaling": Knob("worker: workflow task pollers autoscaling"),
    "pollers-20": Knob("worker: 20 workflow task pollers, half of them sticky"),
    "workflow-tasks-200": Knob("worker: 200 workflow task slots, 300 local activity slots"),
    "python-gc": Knob("Python's collector as it comes (no settle_heap)"),
    "worker-settle-heap": Knob("settle_heap in longhaul worker too (frozen heap, fewer young passes)"),
}


async def run(runs: int, in_flight: int, repeats: int, knobs: list[str]) -> Comparison:
    chosen = [k for k in knobs or KNOBS if k != DEFAULTS]
    comparison = Comparison("tuning", baseline=f"serve · {DEFAULTS}", work=runs)
    comparison.notes.update(runs=runs, in_flight=in_flight, knobs={k: KNOBS[k].description for k in chosen})
    ratios: dict[str, float] = {}
    async with stack("tuning") as base, contextlib.AsyncExitStack() as exits:
        defaults = await _processes(base, exits, DEFAULTS, in_flight)
        for knob in chosen:
            async with contextlib.AsyncExitStack() as knob_exits:
                args = KNOBS[knob].server_args
                beside, beside_processes = base, defaults
                if args:  # a fresh server of each kind: a server's database grows with every run it keeps
                    beside = await knob_exits.enter_async_context(stack(f"tuning-{knob}-defaults"))
                    beside_processes = await _processes(beside, knob_exits, DEFAULTS, in_flight)
                    bench = await knob_exits.enter_async_context(stack(f"tuning-{knob}", args))
                else:
                    bench = base
                    await knob_exits.enter_async_context(_stopped_after(bench))
                tried = await _processes(bench, knob_exits, knob, in_flight)
                warmed = {
                    f"{workload} {side}": each(make)
                    for side, processes in ((DEFAULTS, beside_processes), (knob, tried))
                    for workload, make in processes.items()
                }
                await warm_up(warmed, min(runs, 50), in_flight)
                for workload in tried:
                    name = f"{workload} · {DEFAULTS} (beside {knob})"
                    pair = {
                        name: (beside, beside_processes[workload]),
                        f"{workload} · {knob}": (bench, tried[workload]),
                    }
                    await _measure_pair(comparison, pair, runs, in_flight, repeats)
                    ratios[f"{workload} · {knob}"] = round(comparison.ratio(f"{workload} · {knob}", name), 3)
    comparison.baseline = next(iter(comparison.seconds))
    comparison.notes["ratio_to_defaults"] = ratios
    return comparison


async def _measure_pair(
    comparison: Comparison,
    pair: dict[str, tuple[Stack, Callable[[str], One]]],
    runs: int,
    in_flight: int,
    repeats: int,
) -> None:
    """``repeats`` measurements of both variants of ``pair``, the order alternating every repeat."""
    for repeat in range(repeats):
        order = list(pair.items())
        for name, (bench, make) in order if repeat % 2 == 0 else reversed(order):
            await bench.measure(comparison, name, each(make)(uuid.uuid4().hex[:8], runs, in_flight))


@contextlib.asynccontextmanager
async def _stopped_after(bench: Stack) -> AsyncIterator[None]:
    """Stop the services started on ``bench`` inside the block when it ends (an idle process still
    polls: a knob's processes must not load the measurements of the knobs after it)."""
    before = len(bench.services)
    try:
        yield
    finally:
        for service in reversed(bench.services[before:]):
            service.stop()
        del bench.services[before:]


async def _processes(
    bench: Stack, exits: contextlib.AsyncExitStack, knob: str, in_flight: int
) -> dict[str, Callable[[str], One]]:
    """The knob's serve, API and worker on ``bench``, and how each workload sends one event to them."""
    program = (sys.executable, "-m", "bench.tuned", knob)
    for part in ("serve", "split"):
        (bench.root / f"{part}-{knob}").mkdir()
    queue = {"task_queue": f"tune-{knob}"}
    client = bench.client
    serve = {"data_dir": str(bench.root / f"serve-{knob}"), **queue, **UNLIMITED_INGEST}
    _, serve_url, serve_key = await bench.api(f"serve-{knob}", "serve", program, **serve)
    split = {"data_dir": str(bench.root / f"split-{knob}"), "task_queue": f"tune-split-{knob}"}
    await bench.worker(f"worker-{knob}", program, **split)
    _, api_url, api_key = await bench.api(f"api-{knob}", "api", program, **split, **UNLIMITED_INGEST)
    serve_http = await exits.enter_async_context(api_client(serve_url, serve_key, in_flight))
    api_http = await exits.enter_async_context(api_client(api_url, api_key, in_flight))
    return {
        "serve": sent_to_longhaul(serve_http, client, "bench.short-steps", workflow_name(ShortSteps)),
        "split": sent_to_longhaul(api_http, client, "bench.steps", workflow_name(TrackedSteps)),
    }
