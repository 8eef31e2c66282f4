"""wrk (Debian's HTTP load generator, in C) posting events: the API measured without a Python client's
CPU on the same two cores. Used beside the httpx client where wrk is installed (``make test`` installs it).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("events.lua")


@dataclass(frozen=True)
class WrkResult:
    requests: int  # answered; up to ``connections`` more were sent and not waited for when wrk stopped
    statuses: dict[int, int]
    p50_ms: float
    p99_ms: float


def wrk() -> str | None:
    """The wrk binary, if installed."""
    return shutil.which("wrk")


async def post_events(
    url: str,
    path: str,
    key: str,
    prefix: str,
    count: int,
    connections: int,
    threads: int = 2,
    delay_ms: float = 0,
) -> WrkResult:
    """POST ``count`` events (ids ``prefix``-thread-n) over ``connections`` kept-alive connections, each
    waiting ``delay_ms`` after an answer before its next request (0: as fast as answered)."""
    binary = wrk()
    if binary is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    threads = min(threads, connections)
    environ = {
        **os.environ,
        "WRK_QUOTA": str(math.ceil(count / threads)),
        "WRK_PREFIX": prefix,
        "WRK_KEY": key,
        "WRK_PATH": path,
        "WRK_DELAY_MS": str(round(delay_ms)),
    }
    process = await asyncio.create_subprocess_exec(
        *(binary, "-t", str(threads), "-c", str(connections), "-d", "600s", "--timeout", "60s"),
        *("-s", str(SCRIPT), url),
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    output, finished = [], 0
    while line := (await process.stdout.readline()).decode(errors="replace"):
        output.append(line)
        finished += line.strip() == "DONE"
        if finished == threads:
            process.send_signal(signal.SIGINT)  # wrk otherwise waits out its -d duration
    await process.wait()
    lines = [line for line in output if line.startswith("RESULT ")]
    # The RESULT line, printed once the run is done, is the verdict: asyncio's child watcher sometimes
    # reports 255 for a wrk that exited normally ("Unknown child process pid"), seen here.
    if not lines:
        raise RuntimeError(f"wrk failed ({process.returncode}): {''.join(output)[-2000:]}")
    result = json.loads(lines[-1].removeprefix("RESULT "))
    return WrkResult(
        requests=result["requests"],
        statuses={int(status): n for status, n in result["statuses"].items()},
        p50_ms=result["p50_ms"],
        p99_ms=result["p99_ms"],
    )
