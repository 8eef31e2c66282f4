"""The local payment provider keeps its charges, idempotency keys and ledger across a restart, even a
SIGKILL: "charged exactly once across a full restart" can be checked against it."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx

from longhaul.webhooks import SIGNATURE_HEADER
from tests.processes import Process, clean_env, free_port, wait_until
from tests.receivers import Received, receiver

CHARGE = {"amount": "12.50", "currency": "EUR", "order_id": "o-1", "customer": "ann"}


def start(tmp_path: Path, port: int, webhook: str, run: int) -> Process:
    process = Process(
        ["payments", f"--port={port}", f"--webhook-url={webhook}", f"--data-dir={tmp_path / 'data'}"],
        tmp_path,
        clean_env(),
        tmp_path / f"payments-{run}.log",
    )
    process.wait_for_output("Uvicorn running", 60)
    return process


def test_charges_keys_ledger_and_due_confirmations_survive_a_sigkill(tmp_path: Path) -> None:
    with receiver(status=200) as hooks:
        _charge_kill_and_restart(tmp_path, hooks)


def _charge_kill_and_restart(tmp_path: Path, hooks: Received) -> None:
    url = hooks.url

    def received() -> list[dict[str, Any]]:
        return [body for headers, body in hooks.posts if headers.get(SIGNATURE_HEADER)]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    first = start(tmp_path, port, url, 1)
    try:
        # A confirmation far enough away that the kill comes first.
        httpx.post(f"{base}/admin/faults", json={"confirm_delay_ms": 3000}).raise_for_status()
        charged = httpx.post(f"{base}/v1/charges", json=CHARGE, headers={"Idempotency-Key": "order-1/charge"})
        assert charged.status_code == 201
        first.popen.send_signal(signal.SIGKILL)
        first.popen.wait()
    finally:
        first.kill()
    assert (tmp_path / "data" / "payments.db").is_file()

    second = start(tmp_path, port, url, 2)
    try:
        again = httpx.post(f"{base}/v1/charges", json=CHARGE, headers={"Idempotency-Key": "order-1/charge"})
        assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["id"] == charged.json()["id"]
        reused = httpx.post(
            f"{base}/v1/charges",
            json={**CHARGE, "amount": "99.00"},
            headers={"Idempotency-Key": "order-1/charge"},
        )
        assert reused.status_code == 409  # the key is remembered with what it was for
        wait_until(
            lambda: len(received()) == 1, 30, "the confirmation that was due while the provider was down"
        )
        [event] = received()
        assert event["data"] == {
            "charge_id": charged.json()["id"],
            "order_id": "o-1",
            "amount": "12.50",
            "currency": "EUR",
            "metadata": {},
        }
        ledger = httpx.get(f"{base}/v1/ledger").json()
        assert [e["op"] for e in ledger] == ["charge", "confirm"]
        assert httpx.get(f"{base}/v1/charges/{charged.json()['id']}").json()["status"] == "succeeded"
    finally:
        second.stop()

    third = start(tmp_path, port, url, 3)  # a clean restart: nothing is sent or confirmed twice
    try:
        assert [e["op"] for e in httpx.get(f"{base}/v1/ledger").json()] == ["charge", "confirm"]
    finally:
        third.stop()
    assert len(received()) == 1
