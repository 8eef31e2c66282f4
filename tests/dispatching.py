"""Starting runs in tests that drive :class:`~longhaul.server.service.RunService` without an API process
(whose dispatcher starts accepted runs behind)."""

from __future__ import annotations

from longhaul.server.dispatcher import Dispatcher
from longhaul.server.envelopes import EventEnvelope
from longhaul.server.service import Accepted, RunService


async def send_started(service: RunService, name: str, envelope: EventEnvelope, *, tenant: str) -> Accepted:
    """Send an event, then run one dispatch cycle, which starts its runs (they are due and unlimited)."""
    accepted = await service.send(name, envelope, tenant=tenant)
    dispatcher = Dispatcher(service)
    try:
        await dispatcher.cycle()
    finally:
        if dispatcher.lease is not None:  # the next test's dispatcher need not wait for it to expire
            await service.queue.release_lease(dispatcher.lease)
    return accepted
