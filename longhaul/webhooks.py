"""Signed webhooks: ``Provider-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">`` (Stripe's scheme).

The timestamp is inside the signed text, so a captured request cannot be replayed after the tolerance.
What a verified webhook becomes is its pipeline's to say (:class:`longhaul.workflows.pipeline.Webhook`): an
:class:`Inbound` event, a reason to ignore it, or :class:`UnprocessableWebhookError`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Any

SIGNATURE_HEADER = "Provider-Signature"
TOLERANCE_SECONDS = 300
# What a well-formed header carries: a Unix time of at most 12 digits, a 64-digit hex SHA-256.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_DIGEST = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Inbound:
    """The event a webhook becomes: sent through the catalog like any other (``id`` from the sender's
    event id, so a redelivery is a duplicate)."""

    event: str
    id: str
    payload: dict[str, Any]
    tenant: str


class UnprocessableWebhookError(ValueError):
    """An authentic webhook that cannot be turned into an event; the message says why. It is kept as a
    dead letter, since the sender's retries could never make it succeed."""


class BadSignatureError(ValueError):
    """Missing, malformed, wrong or too old."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str | None, body: bytes, *, now: float | None = None) -> None:
    """Raise BadSignatureError unless ``header`` signs ``body`` with ``secret`` within the tolerance."""
    if not header:
        raise BadSignatureError(f"missing {SIGNATURE_HEADER} header")
    fields = dict(part.strip().split("=", 1) for part in header.split(",") if "=" in part)
    timestamp, digest = fields.get("t", ""), fields.get("v1", "")
    # Checked by shape before any conversion: a hostile header (a 5,000-digit time) is a 401, not a 500.
    if not _TIMESTAMP.fullmatch(timestamp) or not _DIGEST.fullmatch(digest):
        raise BadSignatureError(f"malformed {SIGNATURE_HEADER} header")
    if abs((now if now is not None else time.time()) - int(timestamp)) > TOLERANCE_SECONDS:
        raise BadSignatureError("signature timestamp outside the tolerance (replayed or clock skew)")
    expected = sign(secret, int(timestamp), body).split("v1=", 1)[1]
    if not hmac.compare_digest(expected, digest):
        raise BadSignatureError("signature does not match")
