"""Signed provider webhooks: only a fresh, correctly signed request gets through."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from longhaul.config import Settings
from longhaul.storage import RunStore
from longhaul.webhooks import SIGNATURE_HEADER, BadSignatureError, sign, verify
from starters.api import create_app
from tests.apps import api_client

SECRET = "whsec_test"
BODY = b'{"id": "evt_1", "type": "charge.succeeded"}'


def test_a_fresh_correct_signature_verifies() -> None:
    verify(SECRET, sign(SECRET, int(time.time()), BODY), BODY)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (lambda now: None, "missing Provider-Signature header"),
        (lambda now: "v1=abc", "malformed"),
        (lambda now: sign("other-secret", now, BODY), "does not match"),
        (lambda now: sign(SECRET, now - 3600, BODY), "outside the tolerance"),
    ],
    ids=["missing", "malformed", "wrong-secret", "replayed-an-hour-later"],
)
def test_a_bad_signature_is_refused(header: Callable[[int], str | None], message: str) -> None:
    """Headers are made when the test runs (not when it is collected), so "now" is now."""
    with pytest.raises(BadSignatureError, match=message):
        verify(SECRET, header(int(time.time())), BODY)


def test_a_tampered_body_is_refused() -> None:
    header = sign(SECRET, int(time.time()), BODY)
    with pytest.raises(BadSignatureError, match="does not match"):
        verify(SECRET, header, BODY.replace(b"evt_1", b"evt_2"))


async def test_webhook_endpoint_answers_401_to_an_unsigned_request_and_records_nothing(
    temporal_address: str, settings: Settings, store: RunStore
) -> None:
    body = json.dumps(
        {
            "id": "evt_x",
            "type": "charge.succeeded",
            "data": {"order_id": "o", "charge_id": "c", "amount": "1.00"},
        }
    )
    async with api_client(create_app(settings)) as http:
        unsigned = await http.post("/api/webhooks/payments", content=body)
        forged = await http.post(
            "/api/webhooks/payments",
            content=body,
            headers={SIGNATURE_HEADER: sign("guess", int(time.time()), b"")},
        )
        signed_unknown = await http.post(
            "/api/webhooks/payments",
            content=body,
            headers={
                SIGNATURE_HEADER: sign(settings.payments_webhook_secret, int(time.time()), body.encode())
            },
        )
    assert unsigned.status_code == 401 and "missing" in unsigned.json()["detail"]
    assert forged.status_code == 401
    assert signed_unknown.status_code == 200  # authentic, but no order is waiting for it: acknowledged
    assert "no running order-processing run with order_id=o" in signed_unknown.json()["ignored"]
    assert await store.count() == 0
