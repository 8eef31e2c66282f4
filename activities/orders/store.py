"""App storage of the order pipeline: products and stock, reservations, notifications.

Money is stored in integer cents (SQLite has no exact decimal type); the pipeline computes in Decimal.
Each operation that must happen once is keyed by an id derived from the workflow (``op_id``) and enforced
by a primary key, so a retried activity finds its earlier effect instead of repeating it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from sqlalchemy import JSON, DateTime, Integer, String, select, update
from sqlalchemy.orm import Mapped, mapped_column

from activities.orders.models import MONEY, OrderLine
from longhaul.sdk import Base, Database, insert_new, utcnow


class InsufficientStockError(Exception):
    """Not enough stock for a line of the order; nothing was reserved."""


class Product(BaseModel):
    product_id: str
    name: str
    price: Decimal
    stock: int


class ProductRow(Base):
    __tablename__ = "products"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    product_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    price_cents: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int] = mapped_column(Integer)


class ReservationRow(Base):
    __tablename__ = "reservations"

    op_id: Mapped[str] = mapped_column(String(400), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str] = mapped_column(String(100), index=True)
    lines: Mapped[Any] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))  # reserved, released
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class NotificationRow(Base):
    """One per order and outcome: the key that makes "notify exactly once" hold."""

    __tablename__ = "notifications"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16), primary_key=True)
    payload: Mapped[Any] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))  # pending, sent
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


def cents(amount: Decimal) -> int:
    return int((amount.quantize(MONEY) * 100).to_integral_value())


class OrderStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def upsert_products(self, tenant: str, products: list[Product]) -> None:
        """Create or update products (price, name, stock)."""
        async with self.db.sessions.begin() as session:
            for product in products:
                values = {"name": product.name, "price_cents": cents(product.price), "stock": product.stock}
                updated = await session.execute(
                    update(ProductRow)
                    .where(ProductRow.tenant == tenant, ProductRow.product_id == product.product_id)
                    .values(**values)
                )
                if not getattr(updated, "rowcount", 0):
                    session.add(ProductRow(tenant=tenant, product_id=product.product_id, **values))

    async def add_missing_products(self, tenant: str, products: list[Product]) -> int:
        """Create the products that do not exist yet; existing ones (and their stock) are left alone."""
        added = 0
        async with self.db.sessions.begin() as session:
            for product in products:
                row = ProductRow(
                    tenant=tenant,
                    product_id=product.product_id,
                    name=product.name,
                    price_cents=cents(product.price),
                    stock=product.stock,
                )
                added += await insert_new(session, row)
        return added

    async def products(self, tenant: str, product_ids: list[str]) -> dict[str, Product]:
        async with self.db.session() as session:
            rows = await session.scalars(
                select(ProductRow).where(ProductRow.tenant == tenant, ProductRow.product_id.in_(product_ids))
            )
            return {
                row.product_id: Product(
                    product_id=row.product_id,
                    name=row.name,
                    price=(Decimal(row.price_cents) / 100).quantize(MONEY),
                    stock=row.stock,
                )
                for row in rows
            }

    async def reserve(self, tenant: str, op_id: str, order_id: str, lines: list[OrderLine]) -> bool:
        """Take the order's quantities from stock, all or nothing, once per ``op_id``.

        Returns False if this operation was done before (a retry). Raises InsufficientStockError, having
        changed nothing, if any line cannot be served.
        """
        async with self.db.sessions.begin() as session:
            reservation = ReservationRow(
                op_id=op_id,
                tenant=tenant,
                order_id=order_id,
                lines=[line.model_dump(mode="json") for line in lines],
                state="reserved",
                created_at=utcnow(),
            )
            if not await insert_new(session, reservation):  # the key first: a retry stops here
                return False
            for product_id, quantity in sorted(_quantities(lines).items()):  # one lock order: no deadlocks
                taken = await session.execute(
                    update(ProductRow)
                    .where(
                        ProductRow.tenant == tenant,
                        ProductRow.product_id == product_id,
                        ProductRow.stock >= quantity,
                    )
                    .values(stock=ProductRow.stock - quantity)
                )
                if not getattr(taken, "rowcount", 0):
                    raise InsufficientStockError(f"not enough stock of {product_id} for {quantity}")
        return True

    async def release(self, tenant: str, op_id: str) -> bool:
        """Give a reservation's quantities back, once. Returns False if there was nothing to release."""
        async with self.db.sessions.begin() as session:
            released = await session.execute(
                update(ReservationRow)
                .where(ReservationRow.op_id == op_id, ReservationRow.state == "reserved")
                .values(state="released", released_at=utcnow())
            )
            if not getattr(released, "rowcount", 0):
                return False
            reservation = await session.get(ReservationRow, op_id)
            assert reservation is not None
            lines = [OrderLine.model_validate(line) for line in reservation.lines]
            for product_id, quantity in sorted(_quantities(lines).items()):
                await session.execute(
                    update(ProductRow)
                    .where(ProductRow.tenant == tenant, ProductRow.product_id == product_id)
                    .values(stock=ProductRow.stock + quantity)
                )
        return True

    async def claim_notification(
        self, tenant: str, order_id: str, outcome: str, payload: dict[str, Any]
    ) -> bool:
        """Record that this order outcome is to be notified. False if it was sent already."""
        async with self.db.sessions.begin() as session:
            notification = NotificationRow(
                tenant=tenant,
                order_id=order_id,
                outcome=outcome,
                payload=payload,
                state="pending",
                created_at=utcnow(),
            )
            if await insert_new(session, notification):
                return True
            row = await session.get(NotificationRow, (tenant, order_id, outcome))
            return row is not None and row.state != "sent"

    async def mark_notified(self, tenant: str, order_id: str, outcome: str) -> None:
        async with self.db.sessions.begin() as session:
            await session.execute(
                update(NotificationRow)
                .where(
                    NotificationRow.tenant == tenant,
                    NotificationRow.order_id == order_id,
                    NotificationRow.outcome == outcome,
                )
                .values(state="sent", sent_at=utcnow())
            )

    async def notifications(self, tenant: str, order_id: str) -> list[dict[str, Any]]:
        async with self.db.session() as session:
            rows = await session.scalars(
                select(NotificationRow).where(
                    NotificationRow.tenant == tenant, NotificationRow.order_id == order_id
                )
            )
            return [{"outcome": r.outcome, "state": r.state, "payload": r.payload} for r in rows]


def _quantities(lines: list[OrderLine]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for line in lines:
        totals[line.product_id] = totals.get(line.product_id, 0) + line.quantity
    return totals


DEMO_PRODUCTS = [
    Product(
        product_id="sku-book", name="Designing Data-Intensive Applications", price=Decimal("42.50"), stock=100
    ),
    Product(product_id="sku-mug", name="Durable mug", price=Decimal("9.90"), stock=250),
    Product(product_id="sku-tee", name="longhaul T-shirt", price=Decimal("19.99"), stock=50),
]


async def seed_demo_products(db: Database, tenant: str) -> int:
    """Add the demo products if missing (``longhaul dev`` does it, so orders work out of the box)."""
    return await OrderStore(db).add_missing_products(tenant, DEMO_PRODUCTS)
