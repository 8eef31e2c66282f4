"""A local payment provider that behaves like real ones, for development and tests.

What real providers do and this one does too: idempotency keys on charges and refunds (a repeated key
returns the first answer, a key reused for another request is refused), latency, transient 5xx errors
(before or after the charge was made), responses so slow the client gives up, declines, and asynchronous
confirmation of a charge by a signed webhook. A ledger of every operation with its time lets tests check
that nobody was charged twice and that rate limits held. State lives in memory: restarting it forgets.

Run it with ``longhaul payments`` (``longhaul dev`` starts it). Faults are set with ``POST /admin/faults``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from longhaul.webhooks import SIGNATURE_HEADER, sign

log = logging.getLogger("longhaul.payments")


class ChargeIn(BaseModel):
    amount: Decimal = Field(gt=0, max_digits=14, decimal_places=2)
    currency: str = Field(min_length=3, max_length=3)
    order_id: str
    customer: str
    metadata: dict[str, str] = Field(default_factory=dict, description="Echoed in the charge's webhooks.")


class Faults(BaseModel):
    """What can go wrong, set at run time. Counters count down as they fire."""

    latency_ms: int = Field(default=0, ge=0)
    fail_next: int = Field(default=0, ge=0, description="Answer the next N charge/refund calls with 503.")
    fail_after_processing: bool = Field(
        default=False, description="Fail after the operation took effect (the client cannot tell)."
    )
    slow_next: int = Field(
        default=0, ge=0, description="Take effect, then answer so late the client times out."
    )
    slow_ms: int = Field(default=15_000, ge=0)
    decline_customers: list[str] = Field(default_factory=list)
    auto_confirm: bool = Field(default=True, description="Confirm charges by webhook on their own.")
    confirm_delay_ms: int = Field(default=300, ge=0)


@dataclass
class ChargeState:
    id: str
    amount: Decimal
    currency: str
    order_id: str
    customer: str
    status: str  # pending, succeeded, voided, refunded
    created_at: float
    metadata: dict[str, str] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "amount": str(self.amount),
            "currency": self.currency,
            "order_id": self.order_id,
            "customer": self.customer,
            "status": self.status,
            "metadata": self.metadata,
        }


@dataclass
class Provider:
    secret: str
    webhook_url: str | None
    faults: Faults = field(default_factory=Faults)
    charges: dict[str, ChargeState] = field(default_factory=dict)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    answers: dict[tuple[str, str], tuple[str, int, dict[str, Any]]] = field(default_factory=dict)
    key_locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)
    webhooks_sent: list[dict[str, Any]] = field(default_factory=list)
    background: set[asyncio.Task[None]] = field(default_factory=set)
    http: httpx.AsyncClient | None = None  # one connection pool for every webhook (made on first use)

    def record(self, op: str, charge: ChargeState, key: str) -> None:
        self.ledger.append(
            {"at": time.time(), "op": op, "charge_id": charge.id, "order_id": charge.order_id,
             "amount": str(charge.amount), "idempotency_key": key}
        )  # fmt: skip

    def later(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def confirm(self, charge: ChargeState, delay: float = 0) -> None:
        """Mark a pending charge succeeded and tell the merchant by webhook (retried until accepted)."""
        await asyncio.sleep(delay)
        if charge.status != "pending":
            return
        charge.status = "succeeded"
        self.record("confirm", charge, "")
        if not self.webhook_url:
            return
        event = {
            "id": f"evt_{charge.id}_succeeded",
            "type": "charge.succeeded",
            "data": {
                "charge_id": charge.id,
                "order_id": charge.order_id,
                "amount": str(charge.amount),
                "metadata": charge.metadata,
            },
        }
        body = json.dumps(event).encode()
        if self.http is None:
            self.http = httpx.AsyncClient(timeout=10)
        http = self.http
        for attempt in range(20):
            headers = {
                "content-type": "application/json",
                SIGNATURE_HEADER: sign(self.secret, int(time.time()), body),
            }
            try:
                response = await http.post(self.webhook_url, content=body, headers=headers)
                if response.is_success:
                    self.webhooks_sent.append({**event, "status": response.status_code})
                    return
                log.warning("webhook for %s answered %s", charge.id, response.status_code)
            except httpx.HTTPError as error:
                log.warning("webhook for %s failed: %r", charge.id, error)
            await asyncio.sleep(min(0.2 * 2**attempt, 10))


def create_provider(*, secret: str, webhook_url: str | None) -> FastAPI:
    """The provider's HTTP app."""
    provider = Provider(secret=secret, webhook_url=webhook_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if provider.http is not None:
            await provider.http.aclose()

    app = FastAPI(title="longhaul local payment provider", lifespan=lifespan)
    app.state.provider = provider

    async def idempotent(endpoint: str, key: str | None, fingerprint: str, operate: Any) -> JSONResponse:
        """Run ``operate`` once per idempotency key; repeat its answer for a repeated key."""
        if not key:
            raise HTTPException(400, "Idempotency-Key header is required")
        faults = provider.faults
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.fail_next and not faults.fail_after_processing:
            faults.fail_next -= 1
            return JSONResponse({"error": {"code": "service_unavailable"}}, status_code=503)
        slot = (endpoint, key)
        async with provider.key_locks.setdefault(slot, asyncio.Lock()):
            if slot in provider.answers:
                seen_fingerprint, status, body = provider.answers[slot]
                if seen_fingerprint != fingerprint:
                    return JSONResponse({"error": {"code": "idempotency_key_reused"}}, status_code=409)
                return JSONResponse(body, status_code=status, headers={"Idempotent-Replayed": "true"})
            status, body = await operate()
            provider.answers[slot] = (fingerprint, status, body)
        if faults.fail_next and faults.fail_after_processing:
            faults.fail_next -= 1
            return JSONResponse({"error": {"code": "internal_error"}}, status_code=500)
        if faults.slow_next:
            faults.slow_next -= 1
            await asyncio.sleep(faults.slow_ms / 1000)
        return JSONResponse(body, status_code=status)

    @app.post("/v1/charges")
    async def create_charge(
        charge: ChargeIn, idempotency_key: str | None = Header(default=None)
    ) -> JSONResponse:
        async def operate() -> tuple[int, dict[str, Any]]:
            state = ChargeState(
                id=f"ch_{uuid.uuid4().hex[:16]}",
                amount=charge.amount,
                currency=charge.currency,
                order_id=charge.order_id,
                customer=charge.customer,
                status="pending",
                created_at=time.time(),
                metadata=charge.metadata,
            )
            if charge.customer in provider.faults.decline_customers:
                provider.record("decline", state, idempotency_key or "")
                return 402, {"error": {"code": "card_declined", "message": "the card was declined"}}
            provider.charges[state.id] = state
            provider.record("charge", state, idempotency_key or "")
            if provider.faults.auto_confirm:
                provider.later(provider.confirm(state, provider.faults.confirm_delay_ms / 1000))
            return 201, state.public()

        return await idempotent("charges", idempotency_key, charge.model_dump_json(), operate)

    @app.post("/v1/charges/{charge_id}/refund")
    async def refund(charge_id: str, idempotency_key: str | None = Header(default=None)) -> JSONResponse:
        """Refund a succeeded charge, or void one still pending (it will then never be confirmed)."""

        async def operate() -> tuple[int, dict[str, Any]]:
            state = provider.charges.get(charge_id)
            if state is None:
                return 404, {"error": {"code": "no_such_charge"}}
            if state.status in ("pending", "succeeded"):
                state.status = "voided" if state.status == "pending" else "refunded"
                provider.record(
                    "void" if state.status == "voided" else "refund", state, idempotency_key or ""
                )
            return 200, state.public()

        return await idempotent("refunds", idempotency_key, charge_id, operate)

    @app.get("/v1/charges/{charge_id}")
    async def get_charge(charge_id: str) -> dict[str, Any]:
        state = provider.charges.get(charge_id)
        if state is None:
            raise HTTPException(404, "no such charge")
        return state.public()

    @app.get("/v1/ledger")
    async def ledger() -> list[dict[str, Any]]:
        return provider.ledger

    @app.get("/admin/faults")
    async def get_faults() -> Faults:
        return provider.faults

    @app.post("/admin/faults")
    async def set_faults(request: Request) -> Faults:
        """Change some faults: the fields given replace the current ones."""
        changes = await request.json()
        provider.faults = Faults.model_validate({**provider.faults.model_dump(), **changes})
        return provider.faults

    @app.post("/admin/charges/{charge_id}/confirm")
    async def confirm_now(charge_id: str) -> dict[str, Any]:
        state = provider.charges.get(charge_id)
        if state is None:
            raise HTTPException(404, "no such charge")
        provider.later(provider.confirm(state))
        return state.public()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
