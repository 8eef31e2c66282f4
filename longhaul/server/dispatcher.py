"""The dispatcher: starts the run queue's runs in Temporal as their flow control lets them.

It runs inside ``longhaul api`` by default (woken in process the moment an accept commits) and as
``longhaul dispatcher`` on its own. Each cycle it claims the due runs whose slots have room
(:meth:`longhaul.queue.RunQueue.claim`), starts their workflows in parallel, and notes them started; woken
by a timer or poll (and at least each :data:`UPKEEP_EVERY` seconds), it first expires runs whose TTL ran
out, restarts orphaned claims and sends again waitpoint completions their run has not received (every
:data:`REDELIVER_EVERY` seconds), which a cycle woken by an accept skips so the new run starts sooner.
A dispatcher that dies between a claim and a start leaves its runs claimed but not
started; any dispatcher starts them again after :data:`RESTART_AFTER` (a start is idempotent: the
workflow id is the run's).

Wake-ups: in process at once; across processes by PostgreSQL ``LISTEN/NOTIFY`` (new runs and closed
ones, whose slots free), and on SQLite by a short poll. Idle, it sleeps until the next delayed run is due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
import uuid
from datetime import timedelta
from typing import Any

from temporalio.service import RPCError, RPCStatusCode

from longhaul.alerts import AlertStore
from longhaul.config import Settings
from longhaul.db import Database, utcnow
from longhaul.egress import EgressPolicy, guarded_client
from longhaul.migrations import prepare
from longhaul.models import RunRecord, RunStatus, RunUpdate
from longhaul.queue import DueSignal, Lease, LeaseLostError
from longhaul.server.alerts import Notifier
from longhaul.server.envelopes import TemporalUnavailableError
from longhaul.server.service import RunService
from longhaul.server.waitpoints import WaitpointService
from longhaul.server.workflow_pause import cancelled_while_paused
from longhaul.storage import QUEUE_CHANNEL, RunStore
from longhaul.telemetry import QueueMetrics, runtime
from longhaul.temporal import RPC_TIMEOUT, connect, is_unavailable, signal_once
from longhaul.workflows.catalog import load_catalog

log = logging.getLogger("longhaul.dispatcher")

BATCH = 500  # runs claimed per cycle
PARALLEL_STARTS = 64  # start calls in flight at once
RESTART_AFTER = timedelta(seconds=30)  # a claimed run not noted started by then is started again
LEASE_SECONDS = 10.0
POLL_SQLITE = 0.2  # seconds: how soon another process's accept or a freed slot is seen on SQLite
POLL_POSTGRES = 5.0  # NOTIFY wakes it; the poll is a safety net
METRICS_EVERY = 2.0  # seconds between two readings of the queue's depth for /metrics
UPKEEP_EVERY = 1.0  # seconds: expiry and orphan restarts at least this often while accepts keep it busy
REDELIVER_EVERY = 5.0  # seconds between two looks for waitpoint completions not delivered to their run
PRUNE_EVERY = 600.0  # seconds between two prunings of stream chunks past their retention
STOP_WAIT = 15.0  # seconds a stopping dispatcher may take to finish its cycle
UNAVAILABLE_BACKOFF = (0.5, 10.0)
CLOSED_FIRST = (
    "its run closed before the signal reached it"  # first and longest wait while Temporal cannot be reached
)


class Dispatcher:
    """Starts queued runs for one process. ``run()`` until cancelled."""

    def __init__(self, service: RunService) -> None:
        self.service = service
        self.queue = service.queue
        self._wake = asyncio.Event()
        self._stopping = False
        holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        # SQLite: one dispatcher at a time (the lease); PostgreSQL: all of them together.
        self.lease = Lease("dispatcher", holder, LEASE_SECONDS) if self.queue.db.is_sqlite else None
        self.poll = POLL_SQLITE if self.queue.db.is_sqlite else POLL_POSTGRES
        self.started = 0  # workflows started by this dispatcher (for its log line and tests)
        self.taken = 0  # of them, runs claimed by their accept and handed over (RunQueue.hand_over)
        bind = service.settings.metrics_bind
        self.metrics = QueueMetrics(runtime(bind)) if bind else None
        self._measured = 0.0  # when the queue's gauges were last set (time.monotonic)
        self._upkept = 0.0  # when runs were last expired and orphaned claims restarted (time.monotonic)
        self._redelivered = 0.0  # when undelivered waitpoint completions were last sent again
        self._pruned = 0.0  # when stream chunks past their retention were last deleted
        self.waitpoints = WaitpointService(
            service.client, service.store.waitpoints, service.settings, service.catalog
        )
        self._accepted = False  # an accept in this process woke it (since it last went to sleep)
        self._handed: list[RunRecord] = []  # claimed at accept, to start first (RunQueue.hand_over)
        self._backlogged = False  # the last cycle claimed a full batch: more is waiting its turn

    def _take(self, runs: list[RunRecord]) -> None:
        self.taken += len(runs)
        self._handed.extend(runs)
        self._wake.set()

    def _willing(self) -> int:
        """How many runs claimed at accept it takes now: a wave of starts while idle, none under a backlog
        (they wait their turn)."""
        if self._stopping or self._backlogged:
            return 0
        return max(0, PARALLEL_STARTS - len(self._handed))

    def _on_accept(self) -> None:
        """New work (an accept here, or a NOTIFY of another process's accept or closed run)."""
        self._accepted = True
        self._wake.set()

    def stop(self) -> None:
        """Finish the cycle in flight, then return from :meth:`run`. (Cancelling the task alone is not
        enough: a cancellation that arrives while SQLAlchemy waits on SQLite can be lost.)"""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Dispatch until cancelled; gives its lease up on the way out."""
        backoff = UNAVAILABLE_BACKOFF[0]
        self.queue.on_accept(self._on_accept)
        self.queue.hand_over(self._take, self._willing)
        async with self._listening():
            try:
                while not self._stopping:
                    try:
                        busy = await self.cycle(upkeep=self._upkeep_due())
                        backoff = UNAVAILABLE_BACKOFF[0]
                    except LeaseLostError:
                        await self._sleep(LEASE_SECONDS / 2)  # standing by
                        continue
                    except TemporalUnavailableError as error:
                        log.warning("Temporal unavailable; retrying in %.1f s: %s", backoff, error)
                        await self._sleep(backoff)
                        backoff = min(backoff * 2, UNAVAILABLE_BACKOFF[1])
                        continue
                    except Exception:
                        log.exception("dispatch cycle failed; retrying")
                        await self._sleep(1.0)
                        continue
                    if not busy:
                        await self._idle()
            finally:
                if self._handed:  # back in the queue for the next dispatcher, rather than orphaned
                    with contextlib.suppress(Exception):
                        await asyncio.shield(self.queue.unclaim([run.id for run in self._handed]))
                if self.lease is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(self.queue.release_lease(self.lease))

    def _upkeep_due(self) -> bool:
        """Whether this cycle also expires and restarts: not when an accept woke it (the hot path: the new
        run's start waits for nothing else), unless the last upkeep is :data:`UPKEEP_EVERY` old."""
        return not self._accepted or time.monotonic() - self._upkept >= UPKEEP_EVERY

    async def cycle(self, *, upkeep: bool = True) -> bool:
        """One round: expire and restart the orphaned (``upkeep``), claim and start. True if more may be
        due now."""
        handed, self._handed = self._handed, []
        await self._start_all(handed)  # first: nothing to claim, their start waits for nothing
        orphaned: list[RunRecord] = []
        if upkeep:
            self._upkept = time.monotonic()
            expired = await self.queue.expire()
            if expired:
                log.info("expired %d run(s) not started before their TTL", expired)
            orphaned = await self.queue.unstarted(utcnow() - RESTART_AFTER, BATCH)
            if time.monotonic() - self._redelivered >= REDELIVER_EVERY:
                self._redelivered = time.monotonic()
                await self.waitpoints.redeliver()
            if time.monotonic() - self._pruned >= PRUNE_EVERY:
                self._pruned = time.monotonic()
                await self.prune_streams()
        claimed = await self.queue.claim(BATCH, lease=self.lease)
        await self._start_all([*orphaned, *claimed])
        await self._cancel_requested()
        await self.queue.tell_waiters(BATCH)  # parents of the children closed since: signals to send
        await self._deliver_signals()
        if self.metrics is not None and time.monotonic() - self._measured >= METRICS_EVERY:
            self._measured = time.monotonic()
            self.metrics.record(await self.queue.depth())
        self._backlogged = len(claimed) == BATCH
        return self._backlogged

    async def prune_streams(self) -> int:
        """Delete the stream chunks past the retention (``stream_retention_hours``); how many."""
        retention = timedelta(hours=self.service.settings.stream_retention_hours)
        pruned = await self.service.store.streams.prune(utcnow() - retention)
        if pruned:
            log.info("deleted %d stream chunk(s) older than %s", pruned, retention)
        return pruned

    async def _start_all(self, runs: list[RunRecord]) -> None:
        if not runs:
            return
        gate = asyncio.Semaphore(PARALLEL_STARTS)
        started: list[str] = []
        unavailable: list[str] = []

        async def start(run: RunRecord) -> None:
            async with gate:
                try:
                    await self.service.start(run)
                    started.append(run.id)
                except TemporalUnavailableError:
                    unavailable.append(run.id)
                except Exception as error:  # e.g. refused by the server: the run cannot start
                    log.exception("run %s (workflow %s) could not start", run.id, run.workflow_id)
                    await self._fail(run, error)

        await asyncio.gather(*(start(run) for run in runs))
        self.started += len(started)
        if self.metrics is not None and started:
            self.metrics.started.add(len(started))
        await self.queue.started(started)
        if unavailable:
            await self.queue.unclaim(unavailable)
            raise TemporalUnavailableError(f"{len(unavailable)} run(s) could not start; back in the queue")

    async def _fail(self, run: RunRecord, error: Exception) -> None:
        change = RunUpdate(
            run_id=run.id,
            status=RunStatus.FAILED,
            stage="failed",
            error=f"could not start its workflow: {error}",
            log=f"could not start workflow {run.workflow_id}: {error}",
            log_level="error",
        )
        await self.service.store.apply(change, op_id="dispatcher/start")

    async def _cancel_requested(self) -> None:
        """Cancel in Temporal the started runs whose cancellation was asked for (cancel_on, a singleton's
        successor, a cancel that came while the start was in flight)."""
        sent = []
        for run, why in await self.queue.cancellations(BATCH):
            handle = self.service.client.get_workflow_handle(run.workflow_id)
            try:
                await handle.cancel(reason=why, rpc_timeout=RPC_TIMEOUT)
                await cancelled_while_paused(self.service.client, self.queue, run, why)
            except RPCError as error:
                if is_unavailable(error):
                    break  # the next cycle asks again
                if error.status != RPCStatusCode.NOT_FOUND:  # not found: it closed already
                    log.warning("could not cancel run %s (workflow %s): %s", run.id, run.workflow_id, error)
                    continue
            sent.append(run.id)
            log.info("%s: run %s (workflow %s)", why, run.id, run.workflow_id)
        await self.queue.cancel_sent(sent)

    async def _deliver_signals(self) -> None:
        """Send the signals events routed to started runs (:mod:`longhaul.queue.signals`): runs in
        parallel, each run's in the order they came. A delivery whose run closed first, or that the
        server refuses, is given up with the reason; one Temporal cannot take now waits for the next
        cycle (and the run's later ones with it)."""
        by_run: dict[str, list[DueSignal]] = {}
        for due in await self.queue.due_signals(BATCH):
            by_run.setdefault(due.run_id, []).append(due)
        gate = asyncio.Semaphore(PARALLEL_STARTS)
        sent: list[int] = []
        refused: list[tuple[DueSignal, str]] = []
        unavailable: list[BaseException] = []

        async def deliver(run_signals: list[DueSignal]) -> None:
            async with gate:
                for due in run_signals:
                    if due.closed:
                        refused.append((due, CLOSED_FIRST))
                        continue
                    try:
                        await signal_once(
                            self.service.client, due.workflow_id, due.signal, due.payload,
                            request_id=due.request_id,
                        )  # fmt: skip
                    except (RPCError, RuntimeError) as error:
                        if is_unavailable(error):
                            unavailable.append(error)
                            return
                        if not isinstance(error, RPCError):
                            raise
                        closed = error.status == RPCStatusCode.NOT_FOUND
                        refused.append((due, CLOSED_FIRST if closed else str(error)))
                        continue
                    sent.append(due.id)

        await asyncio.gather(*(deliver(signals) for signals in by_run.values()))
        await self.queue.signals_sent(sent)
        for due, why in refused:
            log.warning("signal %s not delivered to run %s (workflow %s): %s", due.signal, due.run_id,
                        due.workflow_id, why)  # fmt: skip
            await self.queue.signals_sent([due.id], error=why)
        if unavailable:
            raise TemporalUnavailableError(f"signals wait for Temporal: {unavailable[0]}")

    async def _idle(self) -> None:
        """Sleep until woken, polled, or the next delayed run is due."""
        timeout = self.poll
        due = await self.queue.next_due()
        if due is not None:
            timeout = min(timeout, max(0.0, (due - utcnow()).total_seconds()))
        await self._sleep(timeout)

    async def _sleep(self, seconds: float) -> None:
        self._accepted = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    @contextlib.asynccontextmanager
    async def _listening(self) -> Any:
        """On PostgreSQL, a connection that LISTENs for new work and freed slots while dispatching."""
        if self.queue.db.is_sqlite:
            yield
            return
        async with self.queue.db.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection

            def woken(*_args: Any) -> None:
                self._on_accept()

            await driver.add_listener(QUEUE_CHANNEL, woken)
            try:
                yield
            finally:
                with contextlib.suppress(Exception):
                    await driver.remove_listener(QUEUE_CHANNEL, woken)


@contextlib.asynccontextmanager
async def dispatching(service: RunService) -> Any:
    """A dispatcher running beside the caller (the API process, tests) until the block ends."""
    dispatcher = Dispatcher(service)
    task = asyncio.create_task(dispatcher.run(), name="longhaul-dispatcher")
    stop_alerts = asyncio.Event()
    # Alert webhooks go where tenants say: only to addresses the deployment allows, checked per connection.
    async with guarded_client(EgressPolicy.allowing(service.settings.alert_private_hosts)) as http:
        notifier = Notifier(AlertStore(service.store.db), service.store, service.settings, http)
        alerts = asyncio.create_task(notifier.run(stop_alerts), name="longhaul-alerts")
        try:
            yield dispatcher
        finally:
            stop_alerts.set()
            dispatcher.stop()
            await _finish(task, alerts)


async def _finish(task: asyncio.Task[None], alerts: asyncio.Task[None]) -> None:
    """Let the dispatcher finish its cycle and the notifier its deliveries, for a while."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(alerts, STOP_WAIT)  # a delivery cut short is sent again (its lease)
    done, _ = await asyncio.wait([task], timeout=STOP_WAIT)
    if not done:  # a start hangs on an unreachable server: give up on it (a start is idempotent)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def run_dispatcher(settings: Settings) -> None:
    """``longhaul dispatcher``: dispatch until SIGINT/SIGTERM."""
    db = Database(settings.app_database_url)
    await prepare(db, migrate=settings.migrate_on_start)
    client = await connect(settings, lazy=True)
    service = RunService(client, RunStore(db), settings, load_catalog(settings.catalog))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("dispatcher starting runs on %s (namespace %s)", settings.temporal_address, client.namespace)
    try:
        async with dispatching(service) as dispatcher:
            await stop.wait()
        log.info("dispatcher stopped after starting %d run(s)", dispatcher.started)
    finally:
        await db.close()
