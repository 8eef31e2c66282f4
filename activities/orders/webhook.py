"""The payment provider's webhook as the order pipeline reads it: ``charge.succeeded`` becomes
``payment.confirmed`` (id: the provider's event id, so a redelivery is a duplicate), sent to the tenant
the charge's metadata names (set by the charge activity; signed with the rest)."""

from __future__ import annotations

from typing import Any

from activities.orders.models import PAYMENT_CONFIRMED
from longhaul.sdk import DEFAULT_TENANT, Inbound, UnprocessableWebhookError


def confirmation_of(event: Any) -> Inbound | str:
    """The ``payment.confirmed`` event a provider event means, or why it is ignored."""
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise UnprocessableWebhookError("the body is not a provider event (an object with a 'type')")
    if not isinstance(event.get("id"), str):  # without it, retries could not be told from new events
        raise UnprocessableWebhookError("the event has no 'id'")
    kind = event["type"]
    if kind != "charge.succeeded":
        return f"{kind} is not handled"
    data = event.get("data")
    if not isinstance(data, dict):
        raise UnprocessableWebhookError(f"'data' of {kind} is not an object")
    metadata = data.get("metadata")
    tenant = metadata.get("tenant") if isinstance(metadata, dict) else None
    payload = {
        name: data.get(name) for name in ("order_id", "charge_id", "amount", "currency") if name in data
    }
    return Inbound(
        event=PAYMENT_CONFIRMED.name,
        id=event["id"],
        payload=payload,
        tenant=tenant if isinstance(tenant, str) and tenant else DEFAULT_TENANT,
    )
