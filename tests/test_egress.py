"""Alert webhooks reach public addresses only (SSRF): every form of a loopback, link-local, private,
multicast or unspecified address is refused at registration, a name resolving to 127.0.0.1 too, and a
destination that got past registration is refused again at delivery; redirects are not followed. A
deployment allows named private hosts or networks. Real API, dev server, worker and local listeners."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from longhaul.alerts import AlertStore, DestinationRequest
from longhaul.config import Settings
from longhaul.db import Database
from longhaul.egress import EgressPolicy, EgressRefusedError, guarded_client
from tests.apps import wait_for_status
from tests.receivers import receiver

ALLOWED = "127.0.0.2/32"  # the deployment's "internal receiver" (all of 127/8 is loopback on Linux)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"alert_private_hosts": [ALLOWED]})


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.0.0.1:7233/", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::1]:8000/api", "loopback"),
        ("http://0.0.0.0:8010/admin/faults", "unspecified"),
        ("http://2130706433/", "loopback"),  # 127.0.0.1 as one number
        ("http://0x7f.1/", "loopback"),
        ("http://10.0.0.1/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[fe80::1]/", "link-local"),
        ("http://localhost:8000/", "loopback"),  # a name that resolves to 127.0.0.1
    ],
)
async def test_each_form_of_a_private_address_is_refused_at_registration_naming_the_url(
    api: httpx.AsyncClient, url: str, kind: str
) -> None:
    response = await api.post("/api/alert-destinations", json={"url": url})
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", "url"]
    assert f"a {kind} address" in problem["msg"] and "LONGHAUL_ALERT_PRIVATE_HOSTS" in problem["msg"]
    assert (await api.get("/api/alert-destinations")).json() == []


async def test_a_name_that_does_not_resolve_is_refused_at_registration(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/alert-destinations", json={"url": "http://no-such-host.invalid/x"})
    assert response.status_code == 422
    assert "does not resolve" in response.json()["detail"][0]["msg"]


async def test_the_policy_allows_public_addresses_and_the_named_private_ones_only() -> None:
    policy = EgressPolicy.allowing(["alerts.internal", "10.1.0.0/16", "[fd00::/8]"])
    assert policy.refusal("example.com", "93.184.215.14") is None
    assert policy.refusal("alerts.internal", "10.9.9.9") is None  # a named host: whatever it resolves to
    assert policy.refusal("other.internal", "10.1.2.3") is None  # any name inside a named network
    assert policy.refusal("other.internal", "fd00::7") is None
    assert "private" in (policy.refusal("other.internal", "10.2.0.1") or "")
    assert "loopback" in (policy.refusal("x", "::ffff:127.0.0.1") or "")
    with pytest.raises(EgressRefusedError, match="loopback"):
        await EgressPolicy().check("http://localhost:1/")


async def _failed_run(api: httpx.AsyncClient) -> str:
    response = await api.post("/api/events/gate.requested", json={"payload": {"gate": "shut"}})
    run_id: str = response.json()["runs"][0]["run_id"]
    await wait_for_status(api, run_id, "failed")
    return run_id


async def _delivery(settings: Settings, run_id: str) -> dict[str, Any]:
    db = Database(settings.app_database_url)
    try:
        for _ in range(100):
            [delivery] = await AlertStore(db).deliveries("default", run_id)
            if delivery["last_error"] or delivery["delivered_at"]:
                return delivery
            await asyncio.sleep(0.1)
    finally:
        await db.close()
    raise AssertionError(f"the alert of {run_id} was never attempted")


async def test_a_destination_that_resolves_to_loopback_at_delivery_is_refused_then(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    """As after DNS rebinding: the stored destination now resolves to 127.0.0.1."""
    with receiver() as inside:
        port = httpx.URL(inside.url).port
        db = Database(settings.app_database_url)
        try:  # stored as registration would, had the name resolved to a public address then
            request = DestinationRequest(url=f"http://localhost:{port}/hook")
            await AlertStore(db).add("default", request)
        finally:
            await db.close()
        delivery = await _delivery(settings, await _failed_run(api))
        assert delivery["delivered_at"] is None
        assert "localhost resolves to 127.0.0.1, which is a loopback address" in delivery["last_error"]
        assert inside.posts == []


async def test_an_allowed_private_receiver_gets_alerts_but_its_redirect_is_not_followed(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    with (
        receiver() as inside,
        receiver(host="127.0.0.2", status=307, location=inside.url) as allowed,
    ):
        response = await api.post("/api/alert-destinations", json={"url": allowed.url})
        assert response.status_code == 201, response.text
        delivery = await _delivery(settings, await _failed_run(api))
        assert len(allowed.posts) >= 1  # the allowed private host was reached
        assert delivery["last_error"] == "HTTP 307"  # its answer is a failure, not a hop
        await asyncio.sleep(0.5)
        assert inside.posts == []


async def test_the_guarded_client_connects_to_allowed_addresses() -> None:
    with receiver(host="127.0.0.2") as allowed:
        async with guarded_client(EgressPolicy.allowing([ALLOWED])) as http:
            assert (await http.post(allowed.url, json={"ok": True})).status_code == 204
            with pytest.raises(httpx.ConnectError, match="loopback"):
                await http.post(allowed.url.replace("127.0.0.2", "127.0.0.1"), json={})
    assert allowed.posts[0][1] == {"ok": True}
