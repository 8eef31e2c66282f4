"""``python -m bench NAME [--repeats N]``: run a benchmark, print its table, write bench/results/*.json."""

from __future__ import annotations

import argparse
import os
import sys

BENCHMARKS = {"transcode": "bench.transcode"}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("name", choices=sorted(BENCHMARKS))
    parser.add_argument("--repeats", type=int, default=5, help="measured runs of each variant (interleaved)")
    parser.add_argument("--seconds", type=float, default=20, help="length of the sample video (transcode)")
    args = parser.parse_args()
    module = __import__(BENCHMARKS[args.name], fromlist=["main"])
    status = 0
    try:
        module.main(args.repeats, args.seconds)
    except BaseException as error:  # report, then leave without interpreter teardown (sdk-python #300)
        print(f"benchmark failed: {error!r}", file=sys.stderr)
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    main()
