"""Group commit: many callers' writes in one transaction, each caller answered once its part committed.

Under load (many runs in flight, a burst of events) the round trips to the database, not the rows, are
the cost of a write. Calls that arrive while one group is being written wait and are written together in
the next group, so a transaction serves as many callers as arrived during the one before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


class GroupCommit(Generic[Item, Outcome]):
    """Writes submitted items in groups with ``write``: one call per group, which returns one outcome per
    item (an exception refuses that item alone). If ``write`` raises, every item of the group gets the
    error (e.g. storage down: each caller retries). One per writer; safe across tasks of one event loop."""

    def __init__(self, write: Callable[[list[Item]], Awaitable[Sequence[Outcome | Exception]]]) -> None:
        self._write = write
        self._waiting: list[tuple[Item, asyncio.Future[Outcome]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Outcome:
        """Write ``item`` with the next group; returns its outcome once that group committed."""
        done: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_groups())
        return await done

    async def _write_groups(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                outcomes: Sequence[Outcome | Exception] = await self._write([item for item, _ in group])
            except Exception as error:  # the whole group failed
                outcomes = [error] * len(group)
            for (_, done), outcome in zip(group, outcomes, strict=True):
                if done.done():  # its caller was cancelled
                    continue
                if isinstance(outcome, Exception):
                    done.set_exception(outcome)
                else:
                    done.set_result(outcome)
