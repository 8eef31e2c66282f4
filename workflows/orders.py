"""The order pipeline: validate → reserve stock → (approval) → charge → wait for confirmation → notify, as
a saga.

Every step after the reservation registers its compensation; on any failure or cancellation they run in
reverse order (refund or void the charge, release the stock), each idempotent. The customer may cancel
(signal ``cancel``) until the payment is confirmed; no confirmation within the configured time cancels the
order. An order above the approval threshold waits, with its stock reserved, for a person to approve it
(a waitpoint token): rejected, or no answer in time, it is cancelled and its stock released. ``state``
(query) and the run record tell where the order is at any time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.orders.models import (
        ORDER_CANCELLED,
        ORDER_CREATED,
        PAYMENT_CONFIRMED,
        Approval,
        Charge,
        ChargeRequest,
        CustomerCancel,
        Notification,
        OrderCreated,
        OrderOutcome,
        OrderPlan,
        OrderResult,
        OrderState,
        PaymentConfirmed,
        RefundRequest,
        ReleaseRequest,
        ReserveRequest,
    )
    from activities.orders.payments import (
        PAYMENT_DECLINED,
        PAYMENT_REJECTED,
        PaymentActivities,
        payment_activities,
    )
    from activities.orders.settings import OrderSettings
    from activities.orders.stock import (
        INSUFFICIENT_STOCK,
        INVALID_ORDER,
        OrderActivities,
        PlanRequest,
        order_activities,
    )
    from activities.orders.store import NotificationRow, ProductRow, ReservationRow, seed_demo_products
    from activities.orders.webhook import confirmation_of
    from longhaul.sdk import cancellation, duration

from longhaul.sdk import (
    CancelOn,
    DevService,
    Pipeline,
    SignalRoute,
    Subscription,
    TaskQueue,
    WaitpointKind,
    Webhook,
    cancelled_why,
    current_tenant,
    defn,
    is_cancellation,
    log,
    metadata,
    progress,
    reason_of,
    signal,
    task_queue,
    tracked,
    wait_for_token,
)

# Payment calls have their own task queue, so Temporal can rate-limit them across all workers.
PAYMENTS = "payments"

STORAGE_RETRY = RetryPolicy(
    maximum_interval=timedelta(seconds=30), non_retryable_error_types=[INVALID_ORDER, INSUFFICIENT_STOCK]
)
# A provider outage is waited out (unlimited attempts, capped backoff) within the step's overall budget.
PAYMENT_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=[PAYMENT_DECLINED, PAYMENT_REJECTED],
)
PAYMENT_BUDGET = timedelta(hours=1)
CALL = timedelta(seconds=30)
# What to undo if the order does not complete: name and call, run in reverse order.
Compensations = list[tuple[str, Callable[[], Awaitable[object]]]]


# Runs started before this check existed replay without it (docs/upgrades.md).
CONFIRMATION_MUST_MATCH = "confirmation-must-match-charge"
REPORT_PAYMENT = "report-payment"  # workflow.patched: the payment's state in the run's metadata
# However it is cancelled (the customer's ``cancel`` signal, or the run cancelled: ``order.cancelled``, the
# API, a bulk action), an order completes with outcome "cancelled" and who cancelled it and why; the
# compensation says what it did, and a pending approval says it was cancelled. Runs started before replay
# as they ran (a cancelled run ended cancelled, without output).
ONE_CANCELLED_OUTCOME = "one-cancelled-outcome"
PAYMENT_MISMATCH = "PaymentMismatch"
APPROVAL = WaitpointKind(
    "order.approval", Approval, "A person approves an order above the approval threshold, or rejects it."
)


def _check_confirmation(confirmation: PaymentConfirmed, amount: Decimal, currency: str) -> None:
    """A confirmation for another amount or currency than was charged does not complete the order: it
    fails, and the saga refunds the charge and releases the stock. Waiting instead would gain nothing,
    since the provider confirms a charge once; failing says why at once, for a person to look into."""
    stated = confirmation.currency.upper() if confirmation.currency else "(no currency)"
    if confirmation.amount != amount or stated != currency.upper():
        raise ApplicationError(
            f"payment confirmation does not match the charge {confirmation.charge_id}: confirmed "
            f"{confirmation.amount} {stated}, charged {amount} {currency}",
            type=PAYMENT_MISMATCH,
            non_retryable=True,
        )


def order_priority(order: OrderCreated) -> int:
    """Temporal priority key (1 first … 5 last): express orders jump a backed-up queue."""
    return 1 if order.express else 3


def _outcome(result: OrderResult) -> str:
    return result.outcome.value + (f": {result.reason}" if result.reason else "")


class OrderCancelledError(Exception):
    """The order is cancelled (by the customer, or for want of a payment confirmation)."""


@defn(name="order-processing")
class OrderWorkflow:
    def __init__(self) -> None:
        self.state = OrderState(order_id="")
        # Keyed by charge: a confirmation may arrive before the charge call's answer does.
        self.confirmations: dict[str, PaymentConfirmed] = {}
        self.cancel_reason: str | None = None
        self.report_payment = False  # whether this run reports its payment in its metadata

    @workflow.run
    async def run(self, order: OrderCreated) -> OrderResult:
        self.state.order_id = order.order_id
        return await tracked(self._process(order), final_stage=_outcome)

    @signal(name="payment.confirmed")
    async def payment_confirmed(self, confirmation: PaymentConfirmed) -> None:
        self.confirmations.setdefault(confirmation.charge_id, confirmation)

    @signal(name="cancel")
    async def cancel(self, request: CustomerCancel | None = None) -> None:
        """The customer cancels (saying why, if they like); honoured until the payment is confirmed."""
        if not self.state.confirmed and self.cancel_reason is None:
            reason = request.reason if request else None
            self.cancel_reason = cancellation("the customer (signal cancel)", reason)
            self.state.cancel_requested = True

    @workflow.query(name="state")
    def get_state(self) -> OrderState:
        return self.state

    async def _process(self, order: OrderCreated) -> OrderResult:
        tenant = current_tenant()
        compensations: Compensations = []
        try:
            return await self._fulfil(order, tenant, compensations)
        except OrderCancelledError as cancelled:
            return await self._cancelled(tenant, order, compensations, str(cancelled))
        except (asyncio.CancelledError, FailureError) as error:
            if is_cancellation(error) and workflow.patched(ONE_CANCELLED_OUTCOME):
                return await self._cancelled(tenant, order, compensations, cancelled_why())
            await self._compensate(compensations)
            run_cancelled = is_cancellation(error)
            outcome = OrderOutcome.CANCELLED if run_cancelled else OrderOutcome.FAILED
            reason = "run cancelled" if run_cancelled else reason_of(error)
            result = OrderResult(
                order_id=order.order_id, outcome=outcome, total=self.state.total or Decimal(0),
                charge_id=self.state.charge_id, reason=reason,
            )  # fmt: skip
            await self._notify(tenant, order, result)
            self.state.outcome, self.state.reason = outcome, reason
            raise

    async def _cancelled(
        self, tenant: str, order: OrderCreated, compensations: Compensations, reason: str
    ) -> OrderResult:
        """Undo what was done, tell the customer, and complete with outcome "cancelled" and ``reason``."""
        await self._compensate(compensations)
        result = OrderResult(
            order_id=order.order_id,
            outcome=OrderOutcome.CANCELLED,
            total=self.state.total or Decimal(0),
            charge_id=self.state.charge_id,
            reason=reason,
        )
        await self._notify(tenant, order, result)
        self.state.outcome, self.state.reason = OrderOutcome.CANCELLED, reason
        return result

    async def _fulfil(
        self,
        order: OrderCreated,
        tenant: str,
        compensations: Compensations,
    ) -> OrderResult:
        """The saga's steps; each registers its compensation in ``compensations`` as it succeeds."""
        operation = workflow.info().workflow_id  # operation ids derive from it: once per order, ever
        # The payment's state in the run's metadata (runs started before it was reported replay without).
        self.report_payment = workflow.patched(REPORT_PAYMENT)
        await self._stage(5, "validating")
        # Validation and the stock reservation are short app-storage steps with idempotent retries:
        # local activities (no activity task, no extra workflow task; docs/benchmarks.md).
        plan = await workflow.execute_local_activity_method(
            OrderActivities.plan,
            PlanRequest(tenant=tenant, order=order),
            start_to_close_timeout=CALL,
            retry_policy=STORAGE_RETRY,
            summary="validate and total",
        )
        self.state.total = plan.total
        self._check_cancel()

        await self._stage(20, f"reserving stock for {len(plan.lines)} lines")
        reserve = ReserveRequest(
            tenant=tenant, op_id=f"{operation}/reserve", order_id=order.order_id, lines=plan.lines
        )
        release = ReleaseRequest(tenant=tenant, op_id=reserve.op_id)
        compensations.append(("release stock", lambda: self._call(OrderActivities.release, release)))
        await self._call(OrderActivities.reserve, reserve)
        self.state.reserved = True
        self._check_cancel()
        if plan.approval_timeout_seconds is not None:  # plans recorded before approvals have none
            await self._approval(order, plan, plan.approval_timeout_seconds)

        await self._stage(40, f"charging {plan.total} {plan.currency}")
        charge = await self._charge(
            ChargeRequest(
                idempotency_key=f"{operation}/charge",
                order_id=order.order_id,
                customer=order.user_id,
                amount=plan.total,
                currency=plan.currency,
                tenant=tenant,
            ),
            compensations,
            operation,
        )
        self._check_cancel()

        await self._stage(60, f"waiting for confirmation of {charge.charge_id}")
        try:
            await workflow.wait_condition(
                lambda: charge.charge_id in self.confirmations or self.cancel_reason is not None,
                timeout=timedelta(seconds=plan.confirm_timeout_seconds),
                timeout_summary="payment confirmation",
            )
        except TimeoutError:
            self.cancel_reason = f"payment not confirmed within {duration(plan.confirm_timeout_seconds)}"
        self._check_cancel()
        if workflow.patched(CONFIRMATION_MUST_MATCH):
            _check_confirmation(self.confirmations[charge.charge_id], plan.total, plan.currency)
        self.state.confirmed = True
        self._payment(status="confirmed")

        await self._stage(90, "notifying")
        result = OrderResult(
            order_id=order.order_id,
            outcome=OrderOutcome.COMPLETED,
            total=plan.total,
            charge_id=charge.charge_id,
        )
        await self._notify(tenant, order, result)
        self.state.outcome = OrderOutcome.COMPLETED
        return result

    async def _charge(
        self,
        request: ChargeRequest,
        compensations: Compensations,
        operation: str,
    ) -> Charge:
        """Charge once. A charge in flight is never abandoned: if the run is cancelled meanwhile, the call
        is let finish so its charge can be refunded."""
        handle = workflow.start_activity_method(
            PaymentActivities.charge,
            request,
            task_queue=task_queue(PAYMENTS),
            start_to_close_timeout=CALL,
            schedule_to_close_timeout=PAYMENT_BUDGET,
            retry_policy=PAYMENT_RETRY,
            priority=workflow.info().priority,
            summary=f"charge {request.amount} {request.currency}",
        )
        try:
            charge = await asyncio.shield(handle)
        except asyncio.CancelledError:
            charge = await handle
            self._charged(charge, compensations, operation)
            raise
        self._charged(charge, compensations, operation)
        return charge

    async def _approval(self, order: OrderCreated, plan: OrderPlan, timeout_seconds: float) -> None:
        """Wait for a person to approve the order (its stock held); rejected or unanswered: cancelled."""
        await self._stage(30, f"waiting for approval of {plan.total} {plan.currency}")
        metadata.set("approval", {"status": "waiting"})
        try:
            result = await wait_for_token(
                APPROVAL,
                timeout=timedelta(seconds=timeout_seconds),
                description=f"order {order.order_id} of {order.user_id}: {plan.total} {plan.currency}",
                tags=[f"order:{order.order_id}", f"user:{order.user_id}"],
            )
        except asyncio.CancelledError:  # the run was cancelled while the order waited
            if workflow.patched(ONE_CANCELLED_OUTCOME):
                metadata.set("approval", {"status": "cancelled", "reason": cancelled_why()})
            raise
        token = result.token
        decision = result.output
        status = "timed_out" if decision is None else "approved" if decision.approved else "rejected"
        metadata.set(
            "approval",
            {
                "status": status,
                "token": token.id,
                "by": token.completed_by,
                "reason": decision and decision.reason,
            },
        )
        if decision is None:
            raise OrderCancelledError(f"not approved within {duration(timeout_seconds)}")
        if not decision.approved:
            raise OrderCancelledError(f"rejected: {decision.reason}")
        await log(f"approved by {token.completed_by}" + (f": {decision.reason}" if decision.reason else ""))

    def _charged(self, charge: Charge, compensations: Compensations, operation: str) -> None:
        self.state.charge_id = charge.charge_id
        self._payment(charge_id=charge.charge_id, status=charge.status, amount=str(charge.amount))
        refund = RefundRequest(idempotency_key=f"{operation}/refund", charge_id=charge.charge_id)
        compensations.append((f"reverse charge {charge.charge_id}", lambda: self._refund(refund)))

    async def _refund(self, refund: RefundRequest) -> None:
        """Refund the charge (or void it, if not confirmed yet)."""
        reversed_charge = await workflow.execute_activity_method(
            PaymentActivities.refund,
            refund,
            task_queue=task_queue(PAYMENTS),
            start_to_close_timeout=CALL,
            schedule_to_close_timeout=PAYMENT_BUDGET,
            retry_policy=PAYMENT_RETRY,
            summary=f"refund {refund.charge_id}",
        )
        self._payment(status=reversed_charge.status)
        if workflow.patched(ONE_CANCELLED_OUTCOME):  # what was done: voided (not confirmed yet) or refunded
            await log(f"compensated: charge {refund.charge_id} {reversed_charge.status}")

    def _payment(self, **state: str) -> None:
        """Merge ``state`` into the run metadata's ``payment`` (from the charge on)."""
        if self.report_payment:
            metadata.set("payment", {**metadata.get("payment", {}), **state})

    async def _call(self, activity: Callable[..., Awaitable[object]], request: object) -> object:
        return await workflow.execute_local_activity_method(
            activity, request, start_to_close_timeout=CALL, retry_policy=STORAGE_RETRY
        )

    async def _compensate(self, compensations: Compensations) -> None:
        """Undo in reverse order. Each compensation is idempotent and retried; one that still fails is
        logged and the others run anyway."""
        for name, undo in reversed(compensations):
            await self._stage(95, f"compensating: {name}")
            try:
                await undo()
            except FailureError as error:
                await log(f"compensation '{name}' failed: {reason_of(error)}", level="error")

    async def _notify(self, tenant: str, order: OrderCreated, result: OrderResult) -> None:
        await workflow.execute_activity_method(
            OrderActivities.notify,
            Notification(
                tenant=tenant,
                order_id=order.order_id,
                user_id=order.user_id,
                outcome=result.outcome,
                total=result.total,
                reason=result.reason,
            ),
            start_to_close_timeout=CALL,
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
            summary=f"notify {result.outcome}",
        )

    async def _stage(self, percent: int, stage: str) -> None:
        self.state.stage = stage
        await progress(percent, stage)

    def _check_cancel(self) -> None:
        if self.cancel_reason is not None:
            raise OrderCancelledError(self.cancel_reason)


ORDERS = Pipeline(
    name="orders",
    entries=(
        Subscription(
            ORDER_CREATED,
            OrderWorkflow,
            key="order_id",
            once_per_key=True,
            priority=order_priority,
            cancel_on=(CancelOn(ORDER_CANCELLED, match="order_id"),),
        ),
        SignalRoute(PAYMENT_CONFIRMED, OrderWorkflow, key="order_id"),
    ),
    queues=(
        TaskQueue(order_activities),
        TaskQueue(
            payment_activities,
            role=PAYMENTS,
            concurrency=lambda settings: OrderSettings.of(settings).payments_concurrency,
            rate_limit=lambda settings: OrderSettings.of(settings).payments_rate_limit,
        ),
    ),
    tables=(ProductRow, ReservationRow, NotificationRow),
    waitpoints=(APPROVAL,),
    # The notification is one short HTTP call, idempotent by its operation id (plan, reserve and release
    # were local activities at their call sites before short steps existed, and stay so).
    short_steps=(OrderActivities.notify,),
    dev_services=(
        DevService(
            command="payments",
            title="payment provider",
            settings=OrderSettings,
            url_field="payments_url",
            port_field="dev_payments_port",
            args=lambda settings: ["--webhook-url", f"{settings.api_url}/api/webhooks/payments"],
            note="local provider; faults: POST /admin/faults",
        ),
    ),
    dev_seed=seed_demo_products,
    settings=OrderSettings,
    webhooks=(
        Webhook(
            source="payments",
            secret=lambda settings: OrderSettings.of(settings).payments_webhook_secret,
            translate=confirmation_of,
            description="The payment provider's signed webhook: ``charge.succeeded`` becomes "
            "``payment.confirmed``.",
        ),
    ),
)
