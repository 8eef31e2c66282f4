"""Payload encryption: AES-GCM with key ids and rotation, end to end through Temporal, and the codec
endpoint an operator's Temporal UI uses."""

from __future__ import annotations

import base64
import os

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from longhaul.api import create_app
from longhaul.codec import ENCODING, KEY_ID, CodecError, EncryptionCodec, parse_keys
from longhaul.config import Settings
from longhaul.server.envelopes import EventEnvelope
from longhaul.server.service import RunService
from longhaul.server.worker import build_worker
from longhaul.storage import RunStore
from longhaul.temporal import connect
from tests.apps import api_client
from tests.dispatching import send_started
from workflows.hello import HelloResult


def key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'{"name": "Zoe"}')


async def test_payloads_are_sealed_with_the_active_key_and_old_keys_still_open_theirs() -> None:
    k1, k2 = key(), key()
    before = EncryptionCodec(parse_keys({"k1": k1}), "k1")
    [sealed] = await before.encode([PLAIN])
    assert sealed.metadata["encoding"] == ENCODING and sealed.metadata[KEY_ID] == b"k1"
    assert b"Zoe" not in sealed.data

    rotated = EncryptionCodec(parse_keys({"k1": k1, "k2": k2}), "k2")
    assert await rotated.decode([sealed]) == [PLAIN]  # written with the old key, still readable
    [resealed] = await rotated.encode([PLAIN])
    assert resealed.metadata[KEY_ID] == b"k2"
    assert await rotated.decode([PLAIN]) == [PLAIN]  # written before encryption: passed through

    without_k1 = EncryptionCodec(parse_keys({"k2": k2}), "k2")
    with pytest.raises(CodecError, match="key 'k1', which is not configured"):
        await without_k1.decode([sealed])
    tampered = Payload(metadata=sealed.metadata, data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
    with pytest.raises(CodecError, match="does not decrypt"):
        await before.decode([tampered])


def test_bad_keys_are_refused_with_the_key_named() -> None:
    with pytest.raises(CodecError, match="'short' must be 32 bytes"):
        parse_keys({"short": base64.b64encode(b"x" * 16).decode()})
    with pytest.raises(CodecError, match="'bad' is not base64"):
        parse_keys({"bad": "not base64!"})


async def test_event_data_and_results_are_ciphertext_in_temporal_and_the_codec_endpoint_opens_them(
    temporal_address: str, dev_client: Client, store: RunStore, settings: Settings
) -> None:
    encrypted = settings.model_copy(update={"payload_keys": {"k1": key()}})
    client = await connect(encrypted)
    service = RunService(client, store, encrypted)
    async with build_worker(client, store, encrypted):
        accepted = await send_started(
            service, "hello", EventEnvelope(payload={"name": "Zoe"}), tenant="default"
        )
        run = accepted.deliveries[0].run
        assert await client.get_workflow_handle(
            run.workflow_id, result_type=HelloResult
        ).result() == HelloResult(message="Hello, Zoe!")
    # What Temporal stores, read without the key:
    stored: list[Payload] = []
    async for event in dev_client.get_workflow_handle(run.workflow_id).fetch_history_events():
        if event.HasField("workflow_execution_started_event_attributes"):
            stored += event.workflow_execution_started_event_attributes.input.payloads
        if event.HasField("workflow_execution_completed_event_attributes"):
            stored += event.workflow_execution_completed_event_attributes.result.payloads
    assert stored and all(p.metadata["encoding"] == ENCODING for p in stored)
    assert not any(b"Zoe" in p.data for p in stored)

    async with api_client(create_app(encrypted)) as http:
        body = {
            "payloads": [
                {"metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                 "data": base64.b64encode(p.data).decode()}
                for p in stored
            ]
        }  # fmt: skip
        decoded = await http.post("/codec/decode", json=body)
        anonymous = await http.post("/codec/decode", json=body, headers={"Authorization": ""})
    assert decoded.status_code == 200
    plain = [base64.b64decode(p["data"]) for p in decoded.json()["payloads"]]
    assert any(b"Zoe" in data for data in plain) and any(b"Hello, Zoe!" in data for data in plain)
    assert anonymous.status_code == 401


async def test_the_codec_takes_the_dashboards_session_cookie_and_its_signed_url_with_cors_credentials(
    settings: Settings,
) -> None:
    """A Temporal UI configured with codec.includeCredentials sends the dashboard's cookie; one that sends
    nothing is given the signed URL. Neither opens it to anyone else."""
    from longhaul.api.codec import codec_url
    from longhaul.signing import signing_key

    ui = "http://localhost:8233"
    encrypted = settings.model_copy(update={"payload_keys": {"k1": key()}, "codec_cors_origins": [ui]})
    app = create_app(encrypted)
    async with api_client(app) as http:
        sealed = await http.post(
            "/codec/encode", json={"payloads": [{"data": base64.b64encode(b'"x"').decode()}]}
        )
        body = sealed.json()
        _, signed_in = await app.state.keys.create("default", "dashboard user")
        anonymous = {"Authorization": ""}
        by_cookie = await http.post(
            "/codec/decode", json=body, headers={**anonymous, "Cookie": f"longhaul_key={signed_in}"}
        )
        assert by_cookie.status_code == 200
        assert base64.b64decode(by_cookie.json()["payloads"][0]["data"]) == b'"x"'
        wrong = await http.post(
            "/codec/decode", json=body, headers={**anonymous, "Cookie": "longhaul_key=lh_nope"}
        )
        assert wrong.status_code == 401
        path = codec_url("http://api", signing_key(encrypted)).removeprefix("http://api")
        assert (await http.post(f"{path}/decode", json=body, headers=anonymous)).status_code == 200
        forged = path[:-4] + ("AAAA" if not path.endswith("AAAA") else "BBBB")
        assert (await http.post(f"{forged}/decode", json=body, headers=anonymous)).status_code == 403
        for target in ("/codec/decode", f"{path}/decode"):
            preflight = await http.options(
                target, headers={"Origin": ui, "Access-Control-Request-Method": "POST",
                                 "Access-Control-Request-Headers": "content-type,x-namespace"},
            )  # fmt: skip
            assert preflight.status_code == 200
            assert preflight.headers["access-control-allow-origin"] == ui
            assert preflight.headers["access-control-allow-credentials"] == "true"
            elsewhere = await http.options(
                target, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
            )
            assert "access-control-allow-origin" not in elsewhere.headers
