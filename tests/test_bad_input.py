"""Every kind of bad input to every endpoint: a 4xx with a message that says what is wrong, and no
state change. Plus a property test: whatever JSON arrives, an event schema accepts it or refuses it with
field paths — it never crashes the API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from longhaul.api import create_app
from longhaul.config import Settings
from longhaul.storage import RunStore
from tests.apps import api_client
from tests.postgres import both_databases

VIDEO = {"video_id": "v1", "user_id": "u1", "file_path": "clip.mp4"}
ORDER = {
    "order_id": "o1",
    "user_id": "u1",
    "items": [{"product_id": "sku-mug", "quantity": 1, "price": "9.90"}],
}


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"a": value}
    return value


# (method, path, body or raw bytes, headers, expected status, text the answer must contain)
CASES: list[tuple[str, str, Any, dict[str, str], int, str]] = [
    ("POST", "/api/events/hello", {"payload": {"name": 42}}, {}, 422, '"loc":["body","payload","name"]'),
    ("POST", "/api/events/hello", {"payload": {}}, {}, 422, "Field required"),
    ("POST", "/api/events/hello", {"payload": {"name": "x" * 201}}, {}, 422, "at most 200 characters"),
    (
        "POST",
        "/api/events/hello",
        {"payload": {"name": "Zoë 🚀", "wait_seconds": -5}},
        {},
        422,
        "wait_seconds",
    ),
    ("POST", "/api/events/hello", {"payload": {"name": "x", "extra": nested(200)}}, {}, 422, "extra"),
    ("POST", "/api/events/hello", {"payload": "not an object"}, {}, 422, '"loc":["body","payload"]'),
    (
        "POST",
        "/api/events/hello",
        b'{"payload": {"name": "x"',
        {"content-type": "application/json"},
        400,
        "malformed",
    ),
    (
        "POST",
        "/api/events/hello",
        b"name=x",
        {"content-type": "application/x-www-form-urlencoded"},
        415,
        "Content-Type must be application/json",
    ),
    (
        "POST",
        "/api/events/hello",
        b'{"payload": {"name": "x"}}',
        {"content-type": "text/plain"},
        415,
        "not 'text/plain'",
    ),
    (
        "POST",
        "/api/events",
        b'{"events": []}',
        {"content-type": "text/plain; charset=utf-8"},
        415,
        "application/json",
    ),
    # Text that JSON allows but storage cannot hold (a lone surrogate, NUL): 422 at its path, not a 500.
    (
        "POST",
        "/api/events/hello",
        b'{"id": "x", "payload": {"name": "x"}, "tags": ["\\ud800"]}',
        {},
        422,
        '"loc":["body","tags",0]',
    ),
    ("POST", "/api/events/hello", {"payload": {"name": "x"}, "tags": [""]}, {}, 422, '"tags",0'),
    (
        "POST",
        "/api/events/hello",
        {"payload": {"name": "x"}, "tags": ["t" * 101]},
        {},
        422,
        "at most 100 characters",
    ),
    ("POST", "/api/events/hello", {"payload": {"name": "x"}, "tags": ["user 42"]}, {}, 422, "should match"),
    ("POST", "/api/events/hello", {"payload": {"name": "x"}, "tags": ["a,b"]}, {}, 422, '"tags",0'),
    (
        "POST",
        "/api/events/hello",
        b'{"payload": {"name": "Ada\\u0000"}}',
        {},
        422,
        '"loc":["body","payload","name"]',
    ),
    (
        "POST",
        "/api/events/hello",
        b'{"payload": {"name": "x", "\\udfff": 1}}',
        {},
        422,
        "lone surrogates",
    ),
    (
        "POST",
        "/api/events",
        b'{"events": [{"name": "hello", "payload": {"name": "x"}, "tags": ["ok", "\\ud800"]}]}',
        {},
        422,
        '"loc":["body","events",0,"tags",1]',
    ),
    (
        "POST",
        "/api/events",
        b'{"events": [{"name": "\\ud800", "payload": {}}]}',
        {},
        422,
        '"loc":["body","events",0,"name"]',
    ),
    (
        "POST",
        "/api/webhooks/payments",
        {"type": "charge.succeeded"},
        {"Provider-Signature": "t=" + "9" * 5000 + ",v1=00"},
        401,
        "malformed",
    ),
    (
        "POST",
        "/api/webhooks/payments",
        {"type": "charge.succeeded"},
        {"Provider-Signature": "t=1700000000,v1=" + "g" * 64},
        401,
        "malformed",
    ),
    ("POST", "/api/events/hello", {"payload": {"name": "x" * 2_000_000}}, {}, 413, "larger than"),
    (
        "POST",
        "/api/events/no.such.event",
        {"payload": {}},
        {},
        404,
        "known events: cleanup.tenant-due, demo.concurrency",
    ),
    (
        "POST",
        "/api/events/hello",
        {"id": "../../etc", "payload": {"name": "x"}},
        {},
        422,
        '"loc":["body","id"]',
    ),
    (
        "POST",
        "/api/events/video.uploaded",
        {"payload": {**VIDEO, "file_path": "../../etc/passwd"}},
        {},
        422,
        "must be a path inside the upload dir",
    ),
    (
        "POST",
        "/api/events/video.uploaded",
        {"payload": {**VIDEO, "file_path": "/etc/passwd"}},
        {},
        422,
        "file_path",
    ),
    ("POST", "/api/events/video.uploaded", {"payload": {**VIDEO, "video_id": "a/b"}}, {}, 422, "video_id"),
    ("POST", "/api/events/order.created", {"payload": {**ORDER, "items": []}}, {}, 422, "at least 1 item"),
    (
        "POST",
        "/api/events/order.created",
        {"payload": {**ORDER, "items": [{"product_id": "sku-mug", "quantity": -1, "price": "9.90"}]}},
        {},
        422,
        '"loc":["body","payload","items",0,"quantity"]',
    ),
    (
        "POST",
        "/api/events/order.created",
        {"payload": {**ORDER, "items": [{"product_id": "sku-mug", "quantity": 1, "price": "9.999"}]}},
        {},
        422,
        "decimal places",
    ),
    (
        "POST",
        "/api/events/order.created",
        {"payload": {**ORDER, "items": [{"product_id": "sku-mug", "quantity": 1, "price": "-1"}]}},
        {},
        422,
        "price",
    ),
    (
        "POST",
        "/api/events",
        {"events": [{"name": "hello", "payload": {"name": 1}}]},
        {},
        422,
        '"loc":["body","events",0,"payload","name"]',
    ),
    (
        "POST",
        "/api/events",
        {"events": [{"name": "hello", "payload": {"name": "x"}}] * 1001},
        {},
        422,
        "at most 1000",
    ),
    ("GET", "/api/runs?limit=0", None, {}, 422, '"loc":["query","limit"]'),
    ("GET", "/api/runs?limit=abc", None, {}, 422, "limit"),
    ("GET", "/api/runs?status=exploded", None, {}, 422, "status"),
    ("GET", "/api/runs?cursor=%00%01", None, {}, 422, "cursor"),
    ("GET", "/api/runs/run_doesnotexist", None, {}, 404, "no run 'run_doesnotexist'"),
    ("GET", "/api/runs/..%2F..%2Fetc%2Fpasswd", None, {}, 404, ""),
    ("POST", "/api/runs/run_nope/cancel", None, {}, 404, "no run"),
    ("POST", "/api/runs/run_nope/cancel", {"reason": "x" * 501}, {}, 422, '"loc":["body","reason"]'),
    ("POST", "/api/runs/run_nope/cancel", {"why": "no"}, {}, 422, '"loc":["body","why"]'),
    ("GET", "/api/runs?system=maybe", None, {}, 422, '"loc":["query","system"]'),
    ("GET", "/api/runs?system=true", None, {}, 403, "admin keys"),
    ("POST", "/api/bulk-actions", {"action": "cancel"}, {}, 422, '"loc":["body","all"]'),
    ("POST", "/api/runs/run_nope/replay", None, {}, 404, "no run"),
    ("POST", "/api/runs/run_nope/signals/cancel", {"payload": {}}, {}, 404, "no run"),
    ("POST", "/api/webhooks/payments", {"type": "charge.succeeded"}, {}, 401, "Provider-Signature"),
    ("POST", "/codec/decode", {"payloads": [{"data": "!!!"}]}, {}, 404, "payload encryption is off"),
    ("POST", "/api/schedules/nope/explode", None, {}, 422, '"loc":["path","action"]'),
    ("POST", "/api/schedules/longhaul.reconcile-runs/pause", None, {}, 403, "admin key"),
    ("GET", "/api/schedules?system=true", None, {}, 403, "admin keys"),
    ("GET", "/api/schedules/nope", None, {}, 404, "no schedule 'nope'"),
    ("POST", "/api/schedules", {"id": "s", "event": "hello"}, {}, 422, "exactly one of cron and interval"),
    (
        "POST",
        "/api/schedules",
        {"id": "s", "event": "nope", "cron": "0 3 * * *"},
        {},
        422,
        '"loc":["body","event"]',
    ),
    (
        "POST",
        "/api/schedules",
        {"id": "s", "event": "hello", "cron": "0 3 * * *", "timezone": "Mars/Base"},
        {},
        422,
        '"loc":["body","timezone"]',
    ),
    (
        "POST",
        "/api/schedules",
        {"id": "s", "event": "hello", "interval_seconds": 5},
        {},
        422,
        '"loc":["body","interval_seconds"]',
    ),
    (
        "POST",
        "/api/schedules",
        {"id": "a b", "event": "hello", "cron": "0 3 * * *"},
        {},
        422,
        '"loc":["body","id"]',
    ),
    (
        "POST",
        "/api/schedules",
        {"id": "s", "event": "hello", "cron": "0 3 * * *", "payload": {"name": 7}},
        {},
        422,
        '"loc":["body","payload","name"]',
    ),
    ("GET", "/api/webhooks/dead-letters", None, {}, 403, "admin key"),
    ("GET", "/api/runs", None, {"Authorization": "Bearer lh_forged_key"}, 401, "invalid or revoked"),
]


@pytest.fixture
async def http(temporal_address: str, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(create_app(settings)) as client:
        yield client


@both_databases
@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "needle"),
    CASES,
    ids=[f"{c[0]} {c[1]} {c[4]}" for c in CASES],
)
async def test_bad_input_gets_a_clear_4xx_and_changes_nothing(
    http: httpx.AsyncClient,
    store: RunStore,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
    status: int,
    needle: str,
) -> None:
    content = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
    sent = {"content-type": "application/json", **headers} if content is not None else headers
    response = await http.request(method, path, content=content, headers=sent)
    assert response.status_code == status, response.text
    assert needle in response.text
    assert await store.count() == 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = [
    "name",
    "greeting",
    "wait_seconds",
    "video_id",
    "user_id",
    "file_path",
    "order_id",
    "items",
    "express",
]
payloads = st.dictionaries(st.sampled_from([*FIELDS, "format", "duration", "other"]), json_values, max_size=6)


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    event=st.sampled_from(["hello", "video.uploaded", "order.created", "payment.confirmed"]), payload=payloads
)
def test_any_json_is_either_a_valid_event_or_a_422_with_field_paths(
    event: str, payload: dict[str, Any]
) -> None:
    from pydantic import ValidationError

    from workflows.catalog import CATALOG

    schema = CATALOG.events[event].schema
    try:
        schema.model_validate(payload)
    except ValidationError as error:
        for problem in error.errors():
            assert isinstance(problem["loc"], tuple) and problem["msg"]
