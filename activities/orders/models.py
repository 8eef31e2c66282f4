"""Models of the order pipeline shared by its events, workflow, activities and the payment provider."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from longhaul.sdk import DEFAULT_TENANT, EventPayload, EventType

MONEY = Decimal("0.01")


class OrderLine(BaseModel):
    product_id: str
    quantity: int
    unit_price: Decimal
    amount: Decimal


class OrderPlan(BaseModel):
    """A validated order: its lines and total (Decimal, never float), plus the deployment's settings the
    workflow needs (read by an activity, so they are recorded in history and replay deterministically)."""

    order_id: str
    lines: list[OrderLine]
    total: Decimal
    currency: str
    confirm_timeout_seconds: float
    approval_timeout_seconds: float | None = Field(
        default=None,
        description="Set when the total is above the approval threshold: how long the order waits for a "
        "person's approval before it is cancelled (plans recorded before approvals have none).",
    )


class Approval(BaseModel):
    """What completes an order's approval token: approve, or reject with a reason."""

    approved: bool
    reason: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _rejection_says_why(self) -> Approval:
        if not self.approved and not (self.reason and self.reason.strip()):
            raise ValueError("a rejection needs a reason")
        return self


class Charge(BaseModel):
    charge_id: str
    status: str
    amount: Decimal


class OrderOutcome(StrEnum):
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


class OrderState(BaseModel):
    """The order as the ``state`` query and the run record show it."""

    order_id: str
    stage: str = "received"
    total: Decimal | None = None
    reserved: bool = False
    charge_id: str | None = None
    confirmed: bool = False
    cancel_requested: bool = False
    outcome: OrderOutcome | None = None
    reason: str | None = None


class OrderResult(BaseModel):
    order_id: str
    outcome: OrderOutcome
    total: Decimal
    charge_id: str | None
    reason: str | None = None


class ReserveRequest(BaseModel):
    tenant: str
    op_id: str = Field(description="Derived from the workflow id: one reservation per order, ever.")
    order_id: str
    lines: list[OrderLine]


class ReleaseRequest(BaseModel):
    tenant: str
    op_id: str


class ChargeRequest(BaseModel):
    idempotency_key: str
    order_id: str
    customer: str
    amount: Decimal
    currency: str
    tenant: str = DEFAULT_TENANT  # sent as metadata: the provider's webhook names the order's tenant


class RefundRequest(BaseModel):
    idempotency_key: str
    charge_id: str


class Notification(BaseModel):
    tenant: str
    order_id: str
    user_id: str
    outcome: OrderOutcome
    total: Decimal
    reason: str | None = None


ORDER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"


class OrderItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: str = Field(pattern=ORDER_ID_PATTERN)
    quantity: int = Field(gt=0, le=10_000)
    price: Decimal = Field(gt=0, max_digits=12, decimal_places=2, description='Unit price, e.g. "19.99".')


class OrderCreated(EventPayload):
    """Payload of ``order.created``."""

    order_id: str = Field(pattern=ORDER_ID_PATTERN)
    user_id: str = Field(min_length=1, max_length=100)
    items: list[OrderItem] = Field(min_length=1, max_length=100)
    express: bool = Field(default=False, description="Express orders go first when the queue is backed up.")


class PaymentConfirmed(EventPayload):
    """Payload of ``payment.confirmed``: routed as a signal to the order's workflow by ``order_id``."""

    order_id: str = Field(pattern=ORDER_ID_PATTERN)
    charge_id: str = Field(min_length=1, max_length=100)
    amount: Decimal = Field(gt=0, max_digits=14, decimal_places=2)
    currency: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z]{3}$",
        description="ISO 4217 code. The order completes only if amount and currency match its charge; "
        "a confirmation that does not state it cannot match.",
    )


class CustomerCancel(BaseModel):
    """The order workflow's ``cancel`` signal: the customer cancels, saying why if they like."""

    reason: str | None = Field(default=None, max_length=500)


class OrderCancelled(EventPayload):
    """Payload of ``order.cancelled``: cancels the order's run, whatever it is doing (its compensation
    voids or refunds the charge and releases the stock)."""

    order_id: str = Field(pattern=ORDER_ID_PATTERN)
    reason: str | None = Field(default=None, max_length=500)


ORDER_CREATED = EventType(name="order.created", version=1, schema=OrderCreated)
ORDER_CANCELLED = EventType(name="order.cancelled", version=1, schema=OrderCancelled)
PAYMENT_CONFIRMED = EventType(name="payment.confirmed", version=1, schema=PaymentConfirmed)
