"""Payment calls to the provider over HTTP with httpx, each with an idempotency key derived from the
workflow, so that a retry (after a timeout, a 5xx, a worker crash) never charges or refunds twice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.orders.models import Charge, ChargeRequest, RefundRequest
from activities.orders.settings import OrderSettings
from longhaul.sdk import Resources

PAYMENT_DECLINED = "PaymentDeclined"
PAYMENT_REJECTED = "PaymentRejected"
CALL_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class PaymentActivities:
    def __init__(self, settings: OrderSettings, http: httpx.AsyncClient) -> None:
        self.base = settings.payments_url.rstrip("/")
        self.http = http

    @activity.defn(name="payments.charge")
    async def charge(self, request: ChargeRequest) -> Charge:
        response = await self._post(
            "/v1/charges",
            request.idempotency_key,
            {
                "amount": str(request.amount),
                "currency": request.currency,
                "order_id": request.order_id,
                "customer": request.customer,
                "metadata": {"tenant": request.tenant},
            },
        )
        return _charge(response)

    @activity.defn(name="payments.refund")
    async def refund(self, request: RefundRequest) -> Charge:
        """Refund the charge, or void it if it was not confirmed yet."""
        response = await self._post(f"/v1/charges/{request.charge_id}/refund", request.idempotency_key, None)
        return _charge(response)

    async def _post(self, path: str, key: str, body: object) -> httpx.Response:
        response = await self.http.post(
            self.base + path, json=body, headers={"Idempotency-Key": key}, timeout=CALL_TIMEOUT
        )
        if response.status_code == 402:
            raise ApplicationError(
                f"payment declined: {_message(response)}", type=PAYMENT_DECLINED, non_retryable=True
            )
        if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
            raise ApplicationError(
                f"payment provider refused the request ({response.status_code}): {_message(response)}",
                type=PAYMENT_REJECTED,
                non_retryable=True,
            )
        response.raise_for_status()  # 5xx, 408, 429: transient, retried with backoff by Temporal
        return response


def _charge(response: httpx.Response) -> Charge:
    body = response.json()
    return Charge(charge_id=body["id"], status=body["status"], amount=body["amount"])


def _message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error", {})
        return str(error.get("message") or error.get("code") or response.text)
    except ValueError:
        return response.text


def payment_activities(resources: Resources) -> list[Callable[..., Any]]:
    payments = PaymentActivities(OrderSettings.of(resources.settings), resources.http)
    return [payments.charge, payments.refund]
