"""Running steps side by side without ever leaving one behind.

``asyncio.gather`` hands back the first failure (or a child's cancellation) at once and leaves the other
steps running on their own: a workflow could then finish, be recorded as cancelled, while an FFmpeg job
it started still runs. :func:`all_of` cancels the rest on the first failure and waits until every step
has really stopped (activities started with ``WAIT_CANCELLATION_COMPLETED``) before the error goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import TypeVar

from temporalio import workflow

T = TypeVar("T")


async def all_of(*steps: Awaitable[T]) -> list[T]:
    """Await every step; on the first failure or on cancellation, stop the others and wait for them."""
    tasks = [asyncio.ensure_future(step) for step in steps]
    try:
        await workflow.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError:
        await _stop(tasks)
        raise
    failed = next((t for t in tasks if t.done() and not t.cancelled() and t.exception() is not None), None)
    if failed is not None:
        await _stop(tasks)
        raise failed.exception()  # type: ignore[misc]
    return [task.result() for task in tasks]


async def _stop(tasks: Sequence[asyncio.Future[T]]) -> None:
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        await workflow.wait(pending)
