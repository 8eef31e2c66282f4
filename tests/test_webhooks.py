"""Signed provider webhooks: only a fresh, correctly signed request gets through."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from activities.orders.settings import OrderSettings
from longhaul.api import create_app
from longhaul.config import Settings
from longhaul.dead_letters import DeadLetters
from longhaul.keys import Role
from longhaul.storage import RunStore
from longhaul.webhooks import SIGNATURE_HEADER, BadSignatureError, sign, verify
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
                SIGNATURE_HEADER: sign(
                    OrderSettings.of(settings).payments_webhook_secret, int(time.time()), body.encode()
                )
            },
        )
    assert unsigned.status_code == 401 and "missing" in unsigned.json()["detail"]
    assert forged.status_code == 401
    assert signed_unknown.status_code == 200  # authentic, but no order is waiting for it: acknowledged
    assert "no running order-processing run with order_id=o" in signed_unknown.json()["ignored"]
    assert await store.count() == 0


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    header=st.text(max_size=80) | st.builds(lambda t, d: f"t={t},v1={d}", st.text(max_size=6000), st.text())
)
def test_any_header_is_either_verified_or_refused_as_a_bad_signature(header: str) -> None:
    """Never another exception: a malformed header (a 5,000-digit time, Unicode digits, no digest) is a
    401 at the endpoint, not a 500."""
    with pytest.raises(BadSignatureError):
        verify(SECRET, header, BODY)


@pytest.mark.parametrize(
    "header",
    ["t=" + "9" * 5000 + ",v1=00", "t=\u00b2,v1=" + "0" * 64, "t=1,v1=" + "z" * 64, "t=,v1=", ",,,", "t=1=2"],
    ids=["5000-digit-time", "unicode-digit", "non-hex-digest", "empty", "commas", "no-digest"],
)
def test_a_malformed_header_is_a_bad_signature(header: str) -> None:
    with pytest.raises(BadSignatureError, match="malformed"):
        verify(SECRET, header, BODY)


def signed(settings: Settings, body: bytes) -> dict[str, str]:
    return {
        SIGNATURE_HEADER: sign(OrderSettings.of(settings).payments_webhook_secret, int(time.time()), body)
    }


UNPROCESSABLE = [
    (b'{"id": "evt_list", "type": "charge.succeeded", "data": [1, 2]}', "'data' of charge.succeeded is not"),
    (
        b'{"id": "evt_nulls", "type": "charge.succeeded", "data": {"order_id": null, "charge_id": null,'
        b' "amount": null}}',
        "payload.order_id",
    ),
    (b"not json at all", "the body is not JSON"),
    (b'{"id": "evt_untyped"}', "an object with a 'type'"),
    (b'{"type": "charge.succeeded", "data": {}}', "the event has no 'id'"),
    (b'{"id": "../bad id", "type": "charge.succeeded", "data": {}}', "id:"),
]


@pytest.mark.parametrize(("body", "reason"), UNPROCESSABLE, ids=[r[1][:24] for r in UNPROCESSABLE])
async def test_a_signed_unprocessable_webhook_is_acknowledged_and_kept_as_a_dead_letter(
    temporal_address: str, settings: Settings, store: RunStore, body: bytes, reason: str
) -> None:
    """Not an error (a provider would retry a 4xx/5xx for days), not lost: a dead letter, counted once per
    provider event however often it is retried."""
    app = create_app(settings)
    async with api_client(app, role=Role.ADMIN) as http:
        first = await http.post("/api/webhooks/payments", content=body, headers=signed(settings, body))
        retried = await http.post("/api/webhooks/payments", content=body, headers=signed(settings, body))
        listed = (await http.get("/api/webhooks/dead-letters")).json()["dead_letters"]
    assert first.status_code == retried.status_code == 200
    assert first.json()["received"] is True and reason in first.json()["reason"]
    [letter] = listed
    assert letter["id"] == first.json()["dead_letter"] == retried.json()["dead_letter"]
    assert letter["attempts"] == 2 and letter["body"] == body.decode() and reason in letter["reason"]
    assert await store.count() == 0


async def test_a_dead_letter_that_can_now_be_processed_is_redelivered_and_marked(
    temporal_address: str, settings: Settings, store: RunStore
) -> None:
    """A dead letter kept by an earlier release (whose code could not process it) goes through once an
    admin re-delivers it with current code; the letter stays, marked ``redelivered``."""
    body = json.dumps(
        {
            "id": "evt_kept",
            "type": "charge.succeeded",
            "data": {"order_id": "o-gone", "charge_id": "ch_1", "amount": "5.00", "currency": "EUR"},
        }
    ).encode()
    kept = await DeadLetters(store.db).record("payments", "evt_kept", body, "an older release's reason")
    app = create_app(settings)
    async with api_client(app, role=Role.ADMIN) as http:
        answer = await http.post(f"/api/webhooks/dead-letters/{kept.id}/redeliver")
        missing = await http.post("/api/webhooks/dead-letters/dl_nope/redeliver")
        dead = (await http.get("/api/webhooks/dead-letters")).json()["dead_letters"]
        done = (await http.get("/api/webhooks/dead-letters?status=redelivered")).json()["dead_letters"]
    assert answer.status_code == 200 and answer.json()["received"] is True
    assert "no running order-processing run with order_id=o-gone" in answer.json()["ignored"]
    assert missing.status_code == 404 and "no dead letter 'dl_nope'" in missing.text
    assert dead == [] and [d["id"] for d in done] == [kept.id]
