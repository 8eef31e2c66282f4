"""The shipped pipelines' steps written by hand in plain temporalio: the ``limit`` benchmark's baselines.

Each does the real work its longhaul pipeline does, with the same activities (the greeting; the stock
reservation in app storage, the charge over HTTP to the payment provider, the wait for its signed
webhook's confirmation, the notification), and none of what longhaul adds: no event API, no run record,
no progress, no catalog. Run by ``bench/plain_worker.py``; its webhook receiver signals the order.
Kept free of the catalog, like :mod:`bench.pipelines` (the sandbox re-imports it for every run).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.hello import HelloRequested, compose_greeting
    from activities.orders.models import (
        ChargeRequest,
        Notification,
        OrderCreated,
        OrderOutcome,
        OrderResult,
        PaymentConfirmed,
        ReserveRequest,
    )
    from activities.orders.payments import PaymentActivities
    from activities.orders.stock import OrderActivities, PlanRequest

from longhaul.workflows import registry

CALL = timedelta(seconds=30)
RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))
TENANT = "bench"


def plain_order_id(order_id: str) -> str:
    return f"bench-plain-order/{order_id}"


@registry.defn(name="bench-plain-hello")
class PlainHello:
    @workflow.run
    async def run(self, event: HelloRequested) -> str:
        return await workflow.execute_local_activity(
            compose_greeting, event, start_to_close_timeout=timedelta(seconds=10)
        )


@registry.defn(name="bench-plain-order")
class PlainOrder:
    """Plan and reserve (local activities), charge (payments task queue), wait for the confirmation
    signal, notify: the order pipeline's happy path, without its saga bookkeeping or run record."""

    def __init__(self) -> None:
        self.confirmed: set[str] = set()

    @registry.signal(name="payment.confirmed")
    async def payment_confirmed(self, confirmation: PaymentConfirmed) -> None:
        self.confirmed.add(confirmation.charge_id)

    @workflow.run
    async def run(self, order: OrderCreated) -> OrderResult:
        info = workflow.info()
        plan = await workflow.execute_local_activity_method(
            OrderActivities.plan, PlanRequest(tenant=TENANT, order=order), start_to_close_timeout=CALL
        )
        reserve = ReserveRequest(
            tenant=TENANT, op_id=f"{info.workflow_id}/reserve", order_id=order.order_id, lines=plan.lines
        )
        await workflow.execute_local_activity_method(
            OrderActivities.reserve, reserve, start_to_close_timeout=CALL, retry_policy=RETRY
        )
        charge = await workflow.execute_activity_method(
            PaymentActivities.charge,
            ChargeRequest(
                idempotency_key=f"{info.workflow_id}/charge",
                order_id=order.order_id,
                customer=order.user_id,
                amount=plan.total,
                currency=plan.currency,
                tenant=TENANT,
            ),
            task_queue=f"{info.task_queue}-payments",
            start_to_close_timeout=CALL,
            retry_policy=RETRY,
        )
        await workflow.wait_condition(
            lambda: charge.charge_id in self.confirmed,
            timeout=timedelta(seconds=plan.confirm_timeout_seconds),
        )
        result = OrderResult(
            order_id=order.order_id,
            outcome=OrderOutcome.COMPLETED,
            total=plan.total,
            charge_id=charge.charge_id,
        )
        notification = Notification(
            tenant=TENANT,
            order_id=order.order_id,
            user_id=order.user_id,
            outcome=result.outcome,
            total=plan.total,
        )
        await workflow.execute_activity_method(
            OrderActivities.notify, notification, start_to_close_timeout=CALL, retry_policy=RETRY
        )
        return result


PLAIN_PIPELINES = (PlainHello, PlainOrder)
