"""The provider's state: charges, idempotency answers and the ledger in its own SQLite file, faults in
memory, and the webhooks it sends."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
from pydantic import BaseModel, Field
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from longhaul.db import Database
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


SCHEMA = MetaData()
CHARGES = Table(
    "charges",
    SCHEMA,
    Column("id", String(40), primary_key=True),
    Column("amount", String(20), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("order_id", String(200), nullable=False),
    Column("customer", String(200), nullable=False),
    Column("status", String(16), nullable=False),  # pending, succeeded, voided, refunded
    Column("created_at", Float, nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("confirm_at", Float),  # when an automatic confirmation is due (kept across a restart)
    Column("webhook_delivered", Boolean, nullable=False, default=False),
)
ANSWERS = Table(  # idempotency keys: the first answer, repeated for the same key
    "idempotency_keys",
    SCHEMA,
    Column("endpoint", String(20), primary_key=True),
    Column("key", String(400), primary_key=True),
    Column("fingerprint", String(2000), nullable=False),
    Column("status", Integer, nullable=False),
    Column("body", JSON, nullable=False),
)
LEDGER = Table(
    "ledger",
    SCHEMA,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("op", String(16), nullable=False),
    Column("charge_id", String(40), nullable=False),
    Column("order_id", String(200), nullable=False),
    Column("amount", String(20), nullable=False),
    Column("idempotency_key", String(400), nullable=False),
)
Answer = tuple[int, dict[str, Any]]


_PUBLIC = ("id", "amount", "currency", "order_id", "customer", "status", "metadata")


def _public(charge: Mapping[Any, Any]) -> dict[str, Any]:
    return {name: charge[name] for name in _PUBLIC}


async def _record(conn: AsyncConnection, op: str, charge: Mapping[Any, Any], key: str) -> None:
    entry = {"at": time.time(), "op": op, "charge_id": charge["id"], "order_id": charge["order_id"],
             "amount": charge["amount"], "idempotency_key": key}  # fmt: skip
    await conn.execute(insert(LEDGER), entry)


@dataclass
class Provider:
    secret: str
    webhook_url: str | None
    db: Database
    faults: Faults = field(default_factory=Faults)
    key_locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)
    background: set[asyncio.Task[None]] = field(default_factory=set)
    http: httpx.AsyncClient | None = None  # one connection pool for every webhook (made on first use)

    async def charge(self, request: ChargeIn, key: str, fingerprint: str) -> Answer:
        """Make the charge (or decline it), its ledger entry and its idempotency answer, in one
        transaction: a crash leaves all or none of them."""
        charge: dict[str, Any] = {
            "id": f"ch_{uuid.uuid4().hex[:16]}",
            "amount": str(request.amount),
            "currency": request.currency,
            "order_id": request.order_id,
            "customer": request.customer,
            "status": "pending",
            "created_at": time.time(),
            "metadata": request.metadata,
            "confirm_at": time.time() + self.faults.confirm_delay_ms / 1000
            if self.faults.auto_confirm
            else None,
            "webhook_delivered": False,
        }
        async with self.db.engine.begin() as conn:
            if request.customer in self.faults.decline_customers:
                await _record(conn, "decline", charge, key)
                answer: Answer = (
                    402,
                    {"error": {"code": "card_declined", "message": "the card was declined"}},
                )
            else:
                await conn.execute(insert(CHARGES), charge)
                await _record(conn, "charge", charge, key)
                answer = (201, _public(charge))
            await conn.execute(insert(ANSWERS), _answer("charges", key, fingerprint, answer))
        if answer[0] == 201 and charge["confirm_at"] is not None:
            self.later(self.confirm(charge["id"], delay=self.faults.confirm_delay_ms / 1000))
        return answer

    async def refund(self, charge_id: str, key: str) -> Answer:
        """Refund a succeeded charge, or void one still pending (it will then never be confirmed)."""
        async with self.db.engine.begin() as conn:
            row = (await conn.execute(select(CHARGES).where(CHARGES.c.id == charge_id))).one_or_none()
            if row is None:
                answer: Answer = (404, {"error": {"code": "no_such_charge"}})
            else:
                charge = dict(row._mapping)
                if charge["status"] in ("pending", "succeeded"):
                    charge["status"] = "voided" if charge["status"] == "pending" else "refunded"
                    await conn.execute(
                        update(CHARGES).where(CHARGES.c.id == charge_id).values(status=charge["status"])
                    )
                    await _record(conn, "void" if charge["status"] == "voided" else "refund", charge, key)
                answer = (200, _public(charge))
            await conn.execute(insert(ANSWERS), _answer("refunds", key, charge_id, answer))
        return answer

    async def answered(self, endpoint: str, key: str) -> tuple[str, Answer] | None:
        """The fingerprint and answer of a key seen before."""
        async with self.db.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(ANSWERS).where(ANSWERS.c.endpoint == endpoint, ANSWERS.c.key == key)
                )
            ).one_or_none()
        return (row.fingerprint, (row.status, row.body)) if row else None

    async def get(self, charge_id: str) -> dict[str, Any] | None:
        async with self.db.engine.connect() as conn:
            charge = (await conn.execute(select(CHARGES).where(CHARGES.c.id == charge_id))).one_or_none()
        return _public(charge._mapping) if charge else None

    async def ledger(self) -> list[dict[str, Any]]:
        async with self.db.engine.connect() as conn:
            rows = await conn.execute(select(LEDGER).order_by(LEDGER.c.seq))
        return [{k: v for k, v in row._asdict().items() if k != "seq"} for row in rows]

    def later(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def resume(self) -> None:
        """After a restart: confirm the charges whose confirmation was due or pending, and send the
        webhooks that were not accepted yet."""
        async with self.db.engine.connect() as conn:
            due = await conn.execute(
                select(CHARGES.c.id, CHARGES.c.status, CHARGES.c.confirm_at).where(
                    ((CHARGES.c.status == "pending") & CHARGES.c.confirm_at.is_not(None))
                    | ((CHARGES.c.status == "succeeded") & CHARGES.c.webhook_delivered.is_(False))
                )
            )
        for charge_id, status, confirm_at in due:
            wait = max(0.0, (confirm_at or 0) - time.time()) if status == "pending" else 0.0
            self.later(self.confirm(charge_id, delay=wait))

    async def confirm(self, charge_id: str, delay: float = 0) -> None:
        """Mark a pending charge succeeded and tell the merchant by webhook (retried until accepted)."""
        await asyncio.sleep(delay)
        async with self.db.engine.begin() as conn:
            done = await conn.execute(
                update(CHARGES)
                .where(CHARGES.c.id == charge_id, CHARGES.c.status == "pending")
                .values(status="succeeded")
            )
            charge = (await conn.execute(select(CHARGES).where(CHARGES.c.id == charge_id))).one()
            if getattr(done, "rowcount", 0):
                await _record(conn, "confirm", charge._mapping, "")
        if charge.status != "succeeded" or charge.webhook_delivered or not self.webhook_url:
            return
        event = {
            "id": f"evt_{charge.id}_succeeded",
            "type": "charge.succeeded",
            "data": {
                "charge_id": charge.id,
                "order_id": charge.order_id,
                "amount": charge.amount,
                "currency": charge.currency,
                "metadata": charge.metadata,
            },
        }
        await self.send_webhook(event)
        async with self.db.engine.begin() as conn:
            await conn.execute(
                update(CHARGES).where(CHARGES.c.id == charge_id).values(webhook_delivered=True)
            )

    async def send_webhook(self, event: dict[str, Any]) -> None:
        """POST a signed event until the merchant accepts it (2xx)."""
        body = json.dumps(event).encode()
        if self.http is None:
            self.http = httpx.AsyncClient(timeout=10)
        for attempt in range(20):
            headers = {
                "content-type": "application/json",
                SIGNATURE_HEADER: sign(self.secret, int(time.time()), body),
            }
            try:
                response = await self.http.post(self.webhook_url or "", content=body, headers=headers)
                if response.is_success:
                    return
                log.warning("webhook %s answered %s", event["id"], response.status_code)
            except httpx.HTTPError as error:
                log.warning("webhook %s failed: %r", event["id"], error)
            await asyncio.sleep(min(0.2 * 2**attempt, 10))


def _answer(endpoint: str, key: str, fingerprint: str, answer: Answer) -> dict[str, Any]:
    return {
        "endpoint": endpoint,
        "key": key,
        "fingerprint": fingerprint,
        "status": answer[0],
        "body": answer[1],
    }
