"""``python -m bench NAME [options]``: run a benchmark, print its table, write bench/results/NAME-*.json.

``python -m bench report`` turns the latest result of each into docs/benchmarks.md's table and plots.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.harness import Comparison


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    names = parser.add_subparsers(dest="name", required=True)
    repeats = argparse.ArgumentParser(add_help=False)
    repeats.add_argument("--repeats", type=int, default=3, help="measured runs of each variant (interleaved)")

    overhead = names.add_parser(
        "overhead", parents=[repeats], help="three-step pipeline: temporalio vs longhaul"
    )
    overhead.add_argument("--runs", type=int, default=500)
    overhead.add_argument("--in-flight", type=int, default=100)

    throughput = names.add_parser(
        "throughput", parents=[repeats], help="three short steps, one box: longhaul serve vs temporalio"
    )
    throughput.add_argument("--runs", type=int, default=300)
    throughput.add_argument("--in-flight", type=int, default=100)
    throughput.add_argument("--sequential", type=int, default=200, help="runs one at a time (latency)")

    limit = names.add_parser(
        "limit", parents=[repeats], help="each pipeline vs its steps written by hand in temporalio"
    )
    limit.add_argument("--runs", type=int, default=300)
    limit.add_argument("--in-flight", type=int, default=100)

    queue = names.add_parser(
        "queue", parents=[repeats], help="run queue: accept rate, drain, burst, idle latency"
    )
    queue.add_argument("--events", type=int, default=4000, help="events per accept measurement")
    queue.add_argument("--drain", type=int, default=20_000, help="queued runs the dispatcher starts")
    queue.add_argument("--burst", type=int, default=50_000, help="events sent at once")
    queue.add_argument("--idle", type=int, default=200, help="events sent one at a time")

    sleepers = names.add_parser("sleepers", help="workflows on durable timers: worker RSS, lateness")
    sleepers.add_argument("--count", type=int, default=10_000)
    sleepers.add_argument("--seconds", type=float, default=120, help="each workflow's timer")
    sleepers.add_argument(
        "--rate", type=float, help="starts per second (0: unpaced; default: half the empty-workflow rate)"
    )
    sleepers.add_argument(
        "--max-cached-workflows", type=int, help="the worker's cache (default: its setting)"
    )
    sleepers.add_argument("--concurrency", type=int, default=100, help="start calls at a time")
    sleepers.add_argument("--workers", type=int, default=1, help="longhaul worker processes sharing them")

    dashboard = names.add_parser(
        "dashboard", parents=[repeats], help="dashboard pages: 20,000 runs in storage vs 200"
    )
    dashboard.add_argument("--small", type=int, default=200, help="runs in the small storage")
    dashboard.add_argument("--large", type=int, default=20_000, help="runs in the large storage")

    streams = names.add_parser(
        "streams", parents=[repeats], help="GET /api/runs with 500 run streams open vs none"
    )
    streams.add_argument("--streams", type=int, default=500, help="streams open while measuring")
    streams.add_argument("--requests", type=int, default=200, help="runs-list requests per measurement")

    datastreams = names.add_parser(
        "datastreams",
        parents=[repeats],
        help="data streams: chunks/s one activity appends; append → EventSource",
    )
    datastreams.add_argument("--chunks", type=int, default=5000, help="chunks per rate measurement")
    datastreams.add_argument("--paced", type=int, default=400, help="chunks of the latency measurement")
    datastreams.add_argument("--interval", type=float, default=0.05, help="seconds between paced chunks")

    tuning = names.add_parser(
        "tuning", parents=[repeats], help="server and process knobs beside the defaults (serve, split)"
    )
    tuning.add_argument("knobs", nargs="*", help="knobs to try (default: all of bench/tuning.py)")
    tuning.add_argument("--runs", type=int, default=300)
    tuning.add_argument("--in-flight", type=int, default=100)

    fairness = names.add_parser(
        "fairness", parents=[repeats], help="tenant B's wait behind tenant A's backlog: fair share vs plain"
    )
    fairness.add_argument("--backlog", type=int, default=10_000, help="runs tenant A sends first")
    fairness.add_argument("--late", type=int, default=20, help="runs tenant B sends after")

    names.add_parser("report", help="latest results → docs/benchmarks.md table and docs/benchmarks.png")

    transcode = names.add_parser("transcode", parents=[repeats], help="workflow vs direct FFmpeg")
    transcode.add_argument("--seconds", type=float, default=20, help="length of the sample video")
    return parser


def _benchmark(args: argparse.Namespace) -> Coroutine[Any, Any, Comparison]:
    """The run of the benchmark ``args.name`` with its options (imported only when chosen)."""
    module = importlib.import_module(f"bench.{args.name}")
    options: dict[str, tuple[str, ...]] = {
        "overhead": ("runs", "in_flight", "repeats"),
        "throughput": ("runs", "in_flight", "repeats", "sequential"),
        "limit": ("runs", "in_flight", "repeats"),
        "dashboard": ("small", "large", "repeats"),
        "streams": ("streams", "requests", "repeats"),
        "queue": ("events", "drain", "burst", "idle", "repeats"),
        "sleepers": ("count", "seconds", "concurrency", "rate", "max_cached_workflows", "workers"),
        "transcode": ("repeats", "seconds"),
        "tuning": ("runs", "in_flight", "repeats", "knobs"),
        "fairness": ("backlog", "late", "repeats"),
        "datastreams": ("chunks", "paced", "interval", "repeats"),
    }
    run: Callable[..., Coroutine[Any, Any, Comparison]] = module.run
    return run(*(getattr(args, option) for option in options[args.name]))


def main() -> None:
    args = _parser().parse_args()
    status = 0
    try:
        if args.name == "report":
            from bench import report

            report.main()
        else:
            asyncio.run(_benchmark(args)).print_and_save()
    except BaseException as error:  # report, then leave without interpreter teardown (sdk-python #300)
        print(f"benchmark failed: {error!r}", file=sys.stderr)
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    main()
