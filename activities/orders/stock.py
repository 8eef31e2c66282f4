"""Activities of the order pipeline that touch app storage or notify: plan, reserve, release, notify.

Reservation and release are keyed by an operation id derived from the workflow id and enforced by a
primary key; a notification is keyed by order and outcome. A retry or a duplicate delivery therefore
finds the earlier effect instead of repeating it.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.orders.models import (
    MONEY,
    Notification,
    OrderCreated,
    OrderLine,
    OrderPlan,
    ReleaseRequest,
    ReserveRequest,
)
from activities.orders.settings import OrderSettings
from activities.orders.store import InsufficientStockError, OrderStore
from longhaul.sdk import Resources

INVALID_ORDER = "InvalidOrder"
INSUFFICIENT_STOCK = "InsufficientStock"


class PlanRequest(BaseModel):
    tenant: str
    order: OrderCreated


class OrderActivities:
    def __init__(self, settings: OrderSettings, orders: OrderStore, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.orders = orders
        self.http = http

    @activity.defn(name="orders.plan")
    async def plan(self, request: PlanRequest) -> OrderPlan:
        """Validate the order against the product catalog and total it in Decimal."""
        order = request.order
        products = await self.orders.products(request.tenant, [item.product_id for item in order.items])
        problems = []
        lines = []
        for item in order.items:
            product = products.get(item.product_id)
            if product is None:
                problems.append(f"unknown product {item.product_id}")
            elif item.price != product.price:
                problems.append(f"price of {item.product_id} is {product.price}, not {item.price}")
            else:
                amount = (item.price * item.quantity).quantize(MONEY)
                lines.append(
                    OrderLine(
                        product_id=item.product_id,
                        quantity=item.quantity,
                        unit_price=item.price,
                        amount=amount,
                    )
                )
        if problems:
            raise ApplicationError(
                "invalid order: " + "; ".join(problems), type=INVALID_ORDER, non_retryable=True
            )
        total = sum((line.amount for line in lines), Decimal("0.00"))
        threshold = self.settings.approval_above
        return OrderPlan(
            order_id=order.order_id,
            lines=lines,
            total=total,
            currency=self.settings.currency,
            confirm_timeout_seconds=self.settings.payment_confirm_timeout,
            approval_timeout_seconds=(
                self.settings.approval_timeout if threshold is not None and total > threshold else None
            ),
        )

    @activity.defn(name="orders.reserve")
    async def reserve(self, request: ReserveRequest) -> bool:
        try:
            return await self.orders.reserve(request.tenant, request.op_id, request.order_id, request.lines)
        except InsufficientStockError as error:
            raise ApplicationError(str(error), type=INSUFFICIENT_STOCK, non_retryable=True) from None

    @activity.defn(name="orders.release")
    async def release(self, request: ReleaseRequest) -> bool:
        return await self.orders.release(request.tenant, request.op_id)

    @activity.defn(name="orders.notify")
    async def notify(self, notification: Notification) -> bool:
        """Tell the outside world the order's outcome, once per order and outcome.

        The webhook carries an ``Idempotency-Key`` (tenant/order/outcome), so a receiver can drop the repeat
        that a crash between sending and recording may cause. Returns False if it had been sent already.
        """
        payload = notification.model_dump(mode="json")
        key = (notification.tenant, notification.order_id, notification.outcome.value)
        if not await self.orders.claim_notification(*key, payload):
            return False
        if self.settings.notify_url:
            response = await self.http.post(
                self.settings.notify_url, json=payload, headers={"Idempotency-Key": "/".join(key)}, timeout=10
            )
            response.raise_for_status()
        await self.orders.mark_notified(*key)
        return True


def order_activities(resources: Resources) -> list[Callable[..., Any]]:
    orders = OrderActivities(OrderSettings.of(resources.settings), OrderStore(resources.db), resources.http)
    return [orders.plan, orders.reserve, orders.release, orders.notify]
