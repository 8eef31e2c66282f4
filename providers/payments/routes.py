"""The provider's endpoints: its public API (``/v1``: charges and refunds with idempotency keys, the
ledger), the test controls (``/admin``: faults, confirmations, any webhook) and its health."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import JSONResponse

from providers.payments.state import Answer, ChargeIn, Faults, Provider

charges = APIRouter(prefix="/v1", tags=["charges"])
admin = APIRouter(prefix="/admin", tags=["admin"])
health = APIRouter(tags=["health"])


async def _provider(request: Request) -> Provider:
    provider: Provider = request.app.state.provider
    return provider


Of = Annotated[Provider, Depends(_provider)]
IdempotencyKey = Annotated[str | None, Header()]


async def _idempotent(
    provider: Provider,
    endpoint: str,
    key: str | None,
    fingerprint: str,
    operate: Callable[[str], Awaitable[Answer]],
) -> JSONResponse:
    """Run ``operate`` once per idempotency key; repeat its answer for a repeated key. Faults fire here,
    before the operation (503) or after it took effect (500, or an answer too late)."""
    if not key:
        raise HTTPException(400, "Idempotency-Key header is required")
    faults = provider.faults
    if faults.latency_ms:
        await asyncio.sleep(faults.latency_ms / 1000)
    if faults.fail_next and not faults.fail_after_processing:
        faults.fail_next -= 1
        return JSONResponse({"error": {"code": "service_unavailable"}}, status_code=503)
    async with provider.key_locks.setdefault((endpoint, key), asyncio.Lock()):
        seen = await provider.answered(endpoint, key)
        if seen is not None:
            seen_fingerprint, (status, body) = seen
            if seen_fingerprint != fingerprint:
                return JSONResponse({"error": {"code": "idempotency_key_reused"}}, status_code=409)
            return JSONResponse(body, status_code=status, headers={"Idempotent-Replayed": "true"})
        status, body = await operate(key)
    if faults.fail_next and faults.fail_after_processing:
        faults.fail_next -= 1
        return JSONResponse({"error": {"code": "internal_error"}}, status_code=500)
    if faults.slow_next:
        faults.slow_next -= 1
        await asyncio.sleep(faults.slow_ms / 1000)
    return JSONResponse(body, status_code=status)


@charges.post("/charges")
async def create_charge(
    charge: ChargeIn, provider: Of, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    fingerprint = charge.model_dump_json()
    return await _idempotent(
        provider,
        "charges",
        idempotency_key,
        fingerprint,
        lambda key: provider.charge(charge, key, fingerprint),
    )


@charges.post("/charges/{charge_id}/refund")
async def refund(charge_id: str, provider: Of, idempotency_key: IdempotencyKey = None) -> JSONResponse:
    """Refund a succeeded charge, or void one still pending (it will then never be confirmed)."""
    return await _idempotent(
        provider, "refunds", idempotency_key, charge_id, lambda key: provider.refund(charge_id, key)
    )


@charges.get("/charges/{charge_id}")
async def get_charge(charge_id: str, provider: Of) -> dict[str, Any]:
    charge = await provider.get(charge_id)
    if charge is None:
        raise HTTPException(404, "no such charge")
    return charge


@charges.get("/ledger")
async def ledger(provider: Of) -> list[dict[str, Any]]:
    return await provider.ledger()


@admin.get("/faults")
async def get_faults(provider: Of) -> Faults:
    return provider.faults


@admin.post("/faults")
async def set_faults(request: Request, provider: Of) -> Faults:
    """Change some faults: the fields given replace the current ones."""
    changes = await request.json()
    provider.faults = Faults.model_validate({**provider.faults.model_dump(), **changes})
    return provider.faults


@admin.post("/charges/{charge_id}/confirm")
async def confirm_now(charge_id: str, provider: Of) -> dict[str, Any]:
    charge = await provider.get(charge_id)
    if charge is None:
        raise HTTPException(404, "no such charge")
    provider.later(provider.confirm(charge_id))
    return charge


@admin.post("/webhooks")
async def send_event(event: dict[str, Any], provider: Of) -> dict[str, str]:
    """Send any event, signed, to the merchant's webhook (to try how it handles what the provider may
    send: new event types, odd shapes)."""
    if not isinstance(event.get("id"), str):
        raise HTTPException(422, "the event needs an 'id'")
    provider.later(provider.send_webhook(event))
    return {"sent": event["id"]}


@health.get("/health")
async def healthy() -> dict[str, str]:
    return {"status": "ok"}
