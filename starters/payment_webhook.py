"""The payment provider's webhook, turned into longhaul's ``payment.confirmed`` event.

``charge.succeeded`` becomes ``payment.confirmed`` (id: the provider's event id, so a redelivery is a
duplicate), sent to the tenant the charge's metadata names. What is authentic but cannot be processed
raises :class:`UnprocessableWebhookError`: the API acknowledges it and keeps it as a dead letter, since
the provider's retries could never make it succeed.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import ValidationError

from longhaul.dead_letters import DeadLetter, DeadLetters, WebhookOutcome
from longhaul.events import PAYMENT_CONFIRMED
from longhaul.models import DEFAULT_TENANT
from starters.service import EventEnvelope, InvalidInputError, NotFoundError, RunService

SOURCE = "payments"
log = logging.getLogger("longhaul.webhooks")


class UnprocessableWebhookError(ValueError):
    """An authentic webhook this code cannot turn into an event; the message says why."""


async def receive(service: RunService, letters: DeadLetters, body: bytes) -> WebhookOutcome:
    """Process a verified webhook; one that cannot be processed is kept as a dead letter (and answered
    like any other: the provider has nothing more to do)."""
    try:
        return await deliver(service, body)
    except UnprocessableWebhookError as error:
        letter = await letters.record(SOURCE, _event_id_of(body), body, str(error))
        log.warning("webhook dead-lettered as %s: %s", letter.id, error)
        return WebhookOutcome(dead_letter=letter.id, reason=letter.reason)


async def redeliver(service: RunService, letters: DeadLetters, letter: DeadLetter) -> WebhookOutcome:
    """Process a dead letter's webhook again with the code running now (its signature was checked when it
    arrived). Through: the letter is marked ``redelivered``. Still unprocessable: it stays dead, with the
    new reason, and the outcome says ``received=False``."""
    body = letter.body.encode()
    try:
        outcome = await deliver(service, body)
    except UnprocessableWebhookError as error:
        letter = await letters.record(letter.source, letter.event_id, body, str(error))
        return WebhookOutcome(received=False, dead_letter=letter.id, reason=letter.reason)
    await letters.resolve(letter.id)
    return outcome


def _event_id_of(body: bytes) -> str | None:
    """The provider's event id, if the body is an event object that names one (for the dead letter)."""
    try:
        event = json.loads(body)
    except ValueError:
        return None
    event_id = event.get("id") if isinstance(event, dict) else None
    return event_id if isinstance(event_id, str) else None


async def deliver(service: RunService, body: bytes) -> WebhookOutcome:
    """Process one verified webhook body. Raises UnprocessableWebhookError, or TemporalUnavailableError
    (transient: the provider should retry)."""
    event = _parse(body)
    kind = event.get("type")
    if kind != "charge.succeeded":
        return WebhookOutcome(ignored=f"{kind} is not handled")
    data = event.get("data")
    if not isinstance(data, dict):
        raise UnprocessableWebhookError(f"'data' of {kind} is not an object")
    metadata = data.get("metadata")
    # The charge's metadata names the order's tenant (set by the charge activity; signed with the rest).
    tenant = metadata.get("tenant") if isinstance(metadata, dict) else None
    payload = {
        name: data.get(name) for name in ("order_id", "charge_id", "amount", "currency") if name in data
    }
    try:
        envelope = EventEnvelope(id=event.get("id"), payload=payload)
    except ValidationError as error:
        raise UnprocessableWebhookError(_reasons(error.errors())) from error
    try:
        accepted = await service.send(
            PAYMENT_CONFIRMED.name,
            envelope,
            tenant=tenant if isinstance(tenant, str) and tenant else DEFAULT_TENANT,
        )
    except InvalidInputError as error:
        raise UnprocessableWebhookError(_reasons(error.errors)) from error
    except NotFoundError as error:  # the order finished meanwhile (e.g. cancelled): nothing to confirm
        return WebhookOutcome(ignored=str(error))
    return WebhookOutcome(runs=[d.run.id for d in accepted.deliveries])


def _parse(body: bytes) -> dict[str, Any]:
    try:
        event = json.loads(body)
    except ValueError as error:
        raise UnprocessableWebhookError("the body is not JSON") from error
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise UnprocessableWebhookError("the body is not a provider event (an object with a 'type')")
    if not isinstance(event.get("id"), str):  # without it, retries could not be told from new events
        raise UnprocessableWebhookError("the event has no 'id'")
    return event


def _reasons(errors: Any) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
