"""Verified webhooks turned into events, for any pipeline that declares one (:class:`Webhook`).

The pipeline's ``translate`` says which event a webhook means (or why it is ignored); the event is then
sent through the catalog like any other. What is authentic but cannot be processed raises
:class:`UnprocessableWebhookError`: the API acknowledges it and keeps it as a dead letter, since the
sender's retries could never make it succeed; an operator may redeliver it once the code can.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import ValidationError

from longhaul.dead_letters import DeadLetters
from longhaul.models import DeadLetter, WebhookOutcome
from longhaul.server.envelopes import EventEnvelope, InvalidInputError, NotFoundError
from longhaul.server.service import RunService
from longhaul.webhooks import UnprocessableWebhookError
from longhaul.workflows.pipeline import Webhook

log = logging.getLogger("longhaul.webhooks")


async def receive(service: RunService, letters: DeadLetters, hook: Webhook, body: bytes) -> WebhookOutcome:
    """Process a verified webhook; one that cannot be processed is kept as a dead letter (and answered
    like any other: the sender has nothing more to do)."""
    try:
        return await deliver(service, hook, body)
    except UnprocessableWebhookError as error:
        letter = await letters.record(hook.source, _event_id_of(body), body, str(error))
        log.warning("%s webhook dead-lettered as %s: %s", hook.source, letter.id, error)
        return WebhookOutcome(dead_letter=letter.id, reason=letter.reason)


async def redeliver(
    service: RunService, letters: DeadLetters, hook: Webhook, letter: DeadLetter
) -> WebhookOutcome:
    """Process a dead letter's webhook again with the code running now (its signature was checked when it
    arrived). Through: the letter is marked ``redelivered``. Still unprocessable: it stays dead, with the
    new reason, and the outcome says ``received=False``."""
    body = letter.body.encode()
    try:
        outcome = await deliver(service, hook, body)
    except UnprocessableWebhookError as error:
        letter = await letters.record(letter.source, letter.event_id, body, str(error))
        return WebhookOutcome(received=False, dead_letter=letter.id, reason=letter.reason)
    await letters.resolve(letter.id)
    return outcome


async def deliver(service: RunService, hook: Webhook, body: bytes) -> WebhookOutcome:
    """Process one verified webhook body. Raises UnprocessableWebhookError, or TemporalUnavailableError
    (transient: the sender should retry)."""
    try:
        parsed = json.loads(body)
    except ValueError as error:
        raise UnprocessableWebhookError("the body is not JSON") from error
    inbound = hook.translate(parsed)
    if isinstance(inbound, str):
        return WebhookOutcome(ignored=inbound)
    try:
        envelope = EventEnvelope(id=inbound.id, payload=inbound.payload)
    except ValidationError as error:
        raise UnprocessableWebhookError(_reasons(error.errors())) from error
    try:
        accepted = await service.send(inbound.event, envelope, tenant=inbound.tenant)
    except InvalidInputError as error:
        raise UnprocessableWebhookError(_reasons(error.errors)) from error
    except NotFoundError as error:  # e.g. the order finished meanwhile (cancelled): nothing to confirm
        return WebhookOutcome(ignored=str(error))
    return WebhookOutcome(runs=[d.run.id for d in accepted.deliveries])


def _event_id_of(body: bytes) -> str | None:
    """The sender's event id, if the body is an object that names one (for the dead letter)."""
    try:
        event = json.loads(body)
    except ValueError:
        return None
    event_id = event.get("id") if isinstance(event, dict) else None
    return event_id if isinstance(event_id, str) else None


def _reasons(errors: Any) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
