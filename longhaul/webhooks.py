"""Signed webhooks: ``Provider-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">`` (Stripe's scheme).

The timestamp is inside the signed text, so a captured request cannot be replayed after the tolerance.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Provider-Signature"
TOLERANCE_SECONDS = 300


class BadSignatureError(ValueError):
    """Missing, malformed, wrong or too old."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str | None, body: bytes, *, now: float | None = None) -> None:
    """Raise BadSignatureError unless ``header`` signs ``body`` with ``secret`` within the tolerance."""
    if not header:
        raise BadSignatureError(f"missing {SIGNATURE_HEADER} header")
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    timestamp = fields.get("t", "")
    if not timestamp.isdigit() or "v1" not in fields:
        raise BadSignatureError(f"malformed {SIGNATURE_HEADER} header")
    if abs((now if now is not None else time.time()) - int(timestamp)) > TOLERANCE_SECONDS:
        raise BadSignatureError("signature timestamp outside the tolerance (replayed or clock skew)")
    expected = sign(secret, int(timestamp), body).split("v1=", 1)[1]
    if not hmac.compare_digest(expected, fields["v1"]):
        raise BadSignatureError("signature does not match")
