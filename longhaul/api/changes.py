"""Changes to runs, read once per API process for all its open streams.

Each open stream (a run's, a tag's, a dashboard page's) used to read storage four times a second on its
own: 200 open streams were 800 queries a second, and every other request queued behind them. Now one
poller per process asks the index what changed since it last looked — one query a tick, however many
streams are open, and none while none is — reads the records of the runs it has not seen in that state,
and hands each stream the ones it follows (:meth:`RunChanges.subscribe`).

A run's ``updated_at`` is taken before its write commits, so a write can land a little behind a later
one: the poller reads again from :data:`OVERLAP` before the newest change it saw and skips what it has
delivered already.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

from longhaul.db import utcnow
from longhaul.models import RunRecord
from longhaul.storage import RunStore

log = logging.getLogger("longhaul.api")

POLL_SECONDS = 0.25
OVERLAP = timedelta(seconds=2)
PAGE = 1000  # changes read per query; more wait for the next query of the same tick


class Subscription:
    """What one stream follows (``wants``), and the changed runs it has not taken yet (the newest
    record of each)."""

    def __init__(self, wants: Callable[[RunRecord], bool]) -> None:
        self.wants = wants
        self._changed: dict[str, RunRecord] = {}
        self._arrived = asyncio.Event()

    def offer(self, runs: list[RunRecord]) -> None:
        for run in runs:
            if self.wants(run):
                self._changed[run.id] = run
                self._arrived.set()

    async def next(self, patience: float) -> list[RunRecord]:
        """The runs changed since the last call, once some have (empty after ``patience`` seconds)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._arrived.wait(), patience)
        self._arrived.clear()
        changed, self._changed = list(self._changed.values()), {}
        return changed


class RunChanges:
    """The poller of one process (``run`` as a task for the process's life)."""

    def __init__(self, store: RunStore, poll_seconds: float = POLL_SECONDS) -> None:
        self.store = store
        self.poll_seconds = poll_seconds
        self.reads = 0  # queries of the index so far (tests, benchmarks)
        self._subscriptions: set[Subscription] = set()
        self._someone = asyncio.Event()

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    @contextlib.asynccontextmanager
    async def subscribe(self, wants: Callable[[RunRecord], bool]) -> AsyncIterator[Subscription]:
        """Changes of the runs ``wants`` says yes to, from now (read what you show first *after*
        subscribing: a change in between is then delivered, possibly as well)."""
        subscription = Subscription(wants)
        self._subscriptions.add(subscription)
        self._someone.set()
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    async def run(self) -> None:
        while True:
            if not self._subscriptions:
                self._someone.clear()
                await self._someone.wait()
            await self._follow()

    async def _follow(self) -> None:
        """Poll while anyone subscribes."""
        newest = utcnow()
        delivered: dict[tuple[str, datetime], None] = {}  # (id, updated_at) within the overlap
        while self._subscriptions:
            try:
                newest = await self._tick(newest, delivered)
            except Exception:  # storage away for a moment: streams go quiet, then on
                log.exception("reading changed runs failed; retrying")
            await asyncio.sleep(self.poll_seconds)

    async def _tick(self, newest: datetime, delivered: dict[tuple[str, datetime], None]) -> datetime:
        since = newest - OVERLAP
        while True:
            self.reads += 1
            changes = await self.store.changes_since(since, PAGE)
            fresh = [change for change in changes if change not in delivered]
            if fresh:
                records = await self.store.records(sorted({run_id for run_id, _ in fresh}))
                for subscription in list(self._subscriptions):
                    subscription.offer(records)
                delivered.update(dict.fromkeys(fresh))
                newest = max(newest, max(at for _, at in fresh))
            if len(changes) < PAGE or changes[-1][1] == since:
                break
            since = changes[-1][1]  # more than a page changed: the next one, in this tick
        horizon = newest - OVERLAP
        for key in [key for key in delivered if key[1] < horizon]:
            del delivered[key]
        return newest
