"""``python -m bench NAME [options]``: run a benchmark, print its table, write bench/results/NAME-*.json.

``python -m bench report`` turns the latest result of each into docs/benchmarks.md's table and plots.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys


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
    sleepers.add_argument("--rate", type=float, default=100, help="starts per second (0: unpaced)")
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

    names.add_parser("report", help="latest results → docs/benchmarks.md table and docs/benchmarks.png")

    transcode = names.add_parser("transcode", parents=[repeats], help="workflow vs direct FFmpeg")
    transcode.add_argument("--seconds", type=float, default=20, help="length of the sample video")
    return parser


def main() -> None:
    args = _parser().parse_args()
    status = 0
    try:
        if args.name == "overhead":
            from bench import overhead

            asyncio.run(overhead.run(args.runs, args.in_flight, args.repeats)).print_and_save()
        elif args.name == "limit":
            from bench import limit

            asyncio.run(limit.run(args.runs, args.in_flight, args.repeats)).print_and_save()
        elif args.name == "dashboard":
            from bench import dashboard

            asyncio.run(dashboard.run(args.small, args.large, args.repeats)).print_and_save()
        elif args.name == "streams":
            from bench import streams

            asyncio.run(streams.run(args.streams, args.requests, args.repeats)).print_and_save()
        elif args.name == "queue":
            from bench import queue

            run = queue.run(args.events, args.drain, args.burst, args.idle, args.repeats)
            asyncio.run(run).print_and_save()
        elif args.name == "sleepers":
            from bench import sleepers

            run = sleepers.run(
                args.count, args.seconds, args.concurrency, args.rate, args.max_cached_workflows, args.workers
            )
            asyncio.run(run).print_and_save()
        elif args.name == "report":
            from bench import report

            report.main()
        elif args.name == "transcode":
            from bench import transcode

            asyncio.run(transcode.run(args.repeats, args.seconds)).print_and_save()
    except BaseException as error:  # report, then leave without interpreter teardown (sdk-python #300)
        print(f"benchmark failed: {error!r}", file=sys.stderr)
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    main()
