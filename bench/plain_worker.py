"""``python -m bench.plain_worker TASK_QUEUE``: the hand-written temporalio baseline, a plain Worker with
the baseline workflows and the three step activities, in its own process like ``longhaul worker``."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from bench.pipelines import BASELINE_WORKFLOWS, STEP_ACTIVITIES


async def main(task_queue: str) -> None:
    client = await Client.connect(os.environ["TEMPORAL_ADDRESS"], data_converter=pydantic_data_converter)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with Worker(
        client, task_queue=task_queue, workflows=list(BASELINE_WORKFLOWS), activities=list(STEP_ACTIVITIES)
    ):
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
    sys.stdout.flush()
    os._exit(0)  # no interpreter teardown with the SDK's runtime alive (sdk-python #300)
