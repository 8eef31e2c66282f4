"""The order pipeline's settings (environment: ``ORDERS_*``; the settings file's ``[orders]`` table)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from longhaul.sdk import PipelineSettings


class OrderSettings(PipelineSettings, section="orders"):
    """Where the payment provider is and how it may be called, when an order needs a person's approval,
    and where its outcomes go."""

    payments_url: str = Field(
        default="http://127.0.0.1:8010", description="Base URL of the payment provider (its /v1 API)."
    )
    payments_webhook_secret: str = Field(
        default="whsec_longhaul_dev", description="Shared secret of the provider's signed webhooks."
    )
    payments_rate_limit: float = Field(
        default=10.0,
        gt=0,
        description="Payment calls per second across all workers (Temporal task queue limit).",
    )
    payments_concurrency: int = Field(default=5, ge=1, description="Payment calls one worker makes at once.")
    payment_confirm_timeout: float = Field(
        default=300.0, gt=0, description="Seconds an order waits for payment.confirmed before cancelling."
    )
    approval_above: Decimal | None = Field(
        default=Decimal(1000),
        ge=0,
        description="Orders whose total is above this wait for a person's approval (a waitpoint token) "
        "before they are charged; unset: none wait.",
    )
    approval_timeout: float = Field(
        default=86_400.0,
        gt=0,
        description="Seconds an order waits for its approval; then it is cancelled (stock released).",
    )
    currency: str = Field(default="EUR", min_length=3, max_length=3, description="Currency of order amounts.")
    notify_url: str | None = Field(
        default=None, description="Where order outcomes are POSTed (webhook); unset: recorded only."
    )
    dev_payments_port: int = Field(
        default=8010, ge=1, le=65535, description="Port of the dev payment provider."
    )
