"""Signals through the queue: an event routed to a run (``SignalRoute``) is kept in the transaction that
accepts it and sent by a dispatcher: accepted (202) while Temporal is down and delivered once it is back,
once however often the event is sent, held until a waiting run starts, and given up with the reason when
the run closed first."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from temporalio.client import Client

from longhaul.config import Settings
from longhaul.models import RunRecord
from longhaul.queue.tables import SIGNALS
from longhaul.server.dispatcher import CLOSED_FIRST, Dispatcher
from longhaul.server.envelopes import EventEnvelope, TemporalUnavailableError
from longhaul.server.service import RunService
from longhaul.server.worker import build_worker
from longhaul.storage import RunStore
from tests.apps import unreachable_client, wait_for_status
from tests.pipelines import TEST_CATALOG
from tests.postgres import both_databases

pytestmark = both_databases


@pytest.fixture
def live(dev_client: Client, store: RunStore, settings: Settings) -> RunService:
    return RunService(dev_client, store, settings, TEST_CATALOG)


@pytest.fixture
async def down(store: RunStore, settings: Settings) -> RunService:
    """A service whose Temporal cannot be reached (nothing listens on its port)."""
    client = await unreachable_client()
    return RunService(client, store, settings, TEST_CATALOG)


async def _cycle(service: RunService) -> None:
    """One dispatch cycle of a dispatcher with ``service``'s Temporal client (its lease given back)."""
    dispatcher = Dispatcher(service)
    try:
        await dispatcher.cycle()
    finally:
        if dispatcher.lease is not None:
            await service.queue.release_lease(dispatcher.lease)


async def _status(store: RunStore, run_id: str, *statuses: str) -> str:
    for _ in range(400):
        run = await store.get(run_id)
        assert run is not None
        if run.status in statuses:
            return run.status
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} never reached {statuses}")


async def _waiting_for_a_decision(live: RunService, document: str) -> RunRecord:
    """An approval run, started and waiting for its ``approval.decided`` signal."""
    asked = EventEnvelope(payload={"document_id": document, "title": "Contract"})
    run = (await live.send("approval.requested", asked, tenant="default")).deliveries[0].run
    await _cycle(live)
    await _status(live.store, run.id, "running")
    return run


def _decided(document: str, event_id: str = "d-1") -> EventEnvelope:
    return EventEnvelope(id=event_id, payload={"document_id": document, "approved": True, "by": "ann"})


async def test_a_routed_signal_is_accepted_while_temporal_is_down_and_delivered_once_when_it_is_back(
    live: RunService, down: RunService, dev_client: Client, store: RunStore, settings: Settings
) -> None:
    document = f"doc-{uuid.uuid4().hex[:6]}"
    async with build_worker(dev_client, store, settings, TEST_CATALOG):
        run = await _waiting_for_a_decision(live, document)

        for _ in range(2):  # the same event twice: one delivery
            decided = await down.send("approval.decided", _decided(document), tenant="default")
            assert [(d.run.id, d.via) for d in decided.deliveries] == [(run.id, "signal")]
        with pytest.raises(TemporalUnavailableError, match="signals wait for Temporal"):
            await _cycle(down)
        [kept] = await live.queue.due_signals(10)
        assert (kept.run_id, kept.signal, kept.payload["by"]) == (run.id, "approval.decided", "ann")

        await _cycle(live)
        assert await live.queue.due_signals(10) == []
        await _status(store, run.id, "completed")
        done = await store.get(run.id)
        assert done is not None and done.output == {"approved": True, "by": "ann"}


async def test_a_signal_for_a_run_that_closed_first_is_given_up_with_the_reason(
    live: RunService, dev_client: Client, store: RunStore, settings: Settings
) -> None:
    document = f"doc-{uuid.uuid4().hex[:6]}"
    async with build_worker(dev_client, store, settings, TEST_CATALOG):
        run = await _waiting_for_a_decision(live, document)
        await live.send("approval.decided", _decided(document), tenant="default")
        await live.cancel(run.id, tenant="default", by="a test")
        await _status(store, run.id, "cancelled")
        [due] = await live.queue.due_signals(10)
        assert due.closed
        await _cycle(live)
        assert await live.queue.due_signals(10) == []
    async with store.db.engine.connect() as conn:
        [(error,)] = (await conn.execute(SIGNALS.select().with_only_columns(SIGNALS.c.error))).all()
    assert error == CLOSED_FIRST


async def test_a_signal_for_a_run_still_waiting_to_start_is_sent_once_it_starts(
    api: httpx.AsyncClient,
) -> None:
    document = f"doc-{uuid.uuid4().hex[:6]}"
    requested = await api.post(
        "/api/events/approval.requested",
        json={"payload": {"document_id": document, "title": "T"}, "options": {"delay": 1}},
    )
    [run] = requested.json()["runs"]
    decided = await api.post(
        "/api/events/approval.decided",
        json={"id": "early", "payload": {"document_id": document, "approved": False, "by": "cy"}},
    )
    assert decided.status_code == 202, decided.text
    assert [(r["run_id"], r["via"]) for r in decided.json()["runs"]] == [(run["run_id"], "signal")]
    done = await wait_for_status(api, run["run_id"], "completed")
    assert done["output"] == {"approved": False, "by": "cy"}
