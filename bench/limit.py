"""Each shipped pipeline against the same steps written by hand in plain temporalio.

``hello`` (a local activity composing the greeting) and ``order`` (plan and reserve stock in app storage,
a charge over HTTP to the local payment provider, the wait for its signed webhook's confirmation, a
notification) run twice, interleaved in one run: sent through longhaul's event API to ``longhaul serve``
(API, dispatcher and worker in one process: the one-box deployment), with run records and progress; and
started with ``client.start_workflow`` on a plain temporalio
Worker doing the same steps with the same activities (bench/plain_pipelines.py), whose confirmations
arrive at a webhook receiver of its own from a second provider. The ratio per pipeline (longhaul / by
hand) is what longhaul's durability bookkeeping costs on top of Temporal's; goal ≥ 0.9. (The ``video``
pipeline's steps are FFmpeg-bound: ``transcode`` compares them with FFmpeg run directly.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

from pydantic import BaseModel

from activities.hello import HelloRequested
from activities.orders.models import OrderCreated
from activities.orders.store import OrderStore, Product
from bench.harness import (
    UNLIMITED_INGEST,
    Comparison,
    api_client,
    each,
    interleaved,
    post_event,
    result_once_started,
    stack,
    warm_up,
)
from bench.plain_pipelines import TENANT, PlainHello, PlainOrder, plain_order_id
from longhaul.db import Database
from longhaul.migrations import upgrade
from longhaul.ports import free_port
from longhaul.server.service import workflow_id_for
from longhaul.workflows.pipeline import workflow_name

GOAL = 0.9
PLAIN_QUEUE = "bench-plain"
PRODUCT = Product(product_id="sku-bench", name="benchmark item", price=Decimal("1.00"), stock=10**9)
Make = Callable[[str], Callable[[int], Awaitable[None]]]
PAIRS = {"hello": ("hello by hand", "hello pipeline"), "order": ("order by hand", "order pipeline")}
# The provider here takes any rate; the setting guards a real provider's limit.
UNLIMITED_PAYMENTS = "100000"


def _order(order_id: str) -> dict[str, object]:
    item = {"product_id": PRODUCT.product_id, "quantity": 1, "price": "1.00"}
    return {"order_id": order_id, "user_id": "bench", "items": [item]}


async def run(runs: int, in_flight: int, repeats: int) -> Comparison:
    comparison = Comparison("limit", baseline="hello by hand", work=runs)
    comparison.notes.update(runs=runs, in_flight=in_flight, goal=GOAL)
    async with stack("limit") as bench:
        db = Database(bench.settings().app_database_url)
        await upgrade(db)
        await OrderStore(db).add_missing_products(TENANT, [PRODUCT])
        await db.close()
        webhook_port = free_port()
        plain_payments = await bench.payments(f"http://127.0.0.1:{webhook_port}/webhook", "plain-payments")
        await bench.plain_worker(
            PLAIN_QUEUE,
            webhook_port,
            ORDERS_PAYMENTS_URL=plain_payments,
            ORDERS_PAYMENTS_RATE_LIMIT=UNLIMITED_PAYMENTS,
        )
        port = free_port()  # the provider confirms to the API's webhook, the worker pays the provider
        payments_url = await bench.payments(f"http://127.0.0.1:{port}/api/webhooks/payments")
        _, url, key = await bench.api(
            "serve",
            command="serve",
            api_port=str(port),
            ORDERS_PAYMENTS_URL=payments_url,
            ORDERS_PAYMENTS_RATE_LIMIT=UNLIMITED_PAYMENTS,
            **UNLIMITED_INGEST,
        )
        client = bench.client
        async with api_client(url, key, in_flight) as http:

            def by_hand(
                workflow: type, payload: Callable[[str], BaseModel], workflow_id: Callable[[str], str]
            ) -> Make:
                def make(batch: str) -> Callable[[int], Awaitable[None]]:
                    async def one(i: int) -> None:
                        instance = f"{batch}-{i}"
                        handle = await client.start_workflow(
                            workflow_name(workflow),
                            payload(instance),
                            id=workflow_id(instance),
                            task_queue=PLAIN_QUEUE,
                        )
                        await handle.result()

                    return one

                return make

            def pipeline(event: str, workflow: str, payload: Callable[[str], dict[str, object]]) -> Make:
                def make(batch: str) -> Callable[[int], Awaitable[None]]:
                    async def one(i: int) -> None:
                        instance = f"{batch}-{i}"
                        body = {"id": instance, "payload": payload(instance)}
                        await post_event(http, f"/api/events/{event}", body)
                        await result_once_started(client, workflow_id_for(workflow, TENANT, instance))

                    return one

                return make

            variants = {
                "hello by hand": each(
                    by_hand(PlainHello, lambda n: HelloRequested(name=n), lambda n: f"bench-plain-hello/{n}")
                ),
                "hello pipeline": each(pipeline("hello", "hello", lambda n: {"name": n})),
                "order by hand": each(
                    by_hand(PlainOrder, lambda n: OrderCreated.model_validate(_order(n)), plain_order_id)
                ),
                # once per order id: the workflow id's instance is the order id
                "order pipeline": each(pipeline("order.created", "order-processing", _order)),
            }
            await warm_up(variants, min(runs, 50), in_flight)
            await interleaved(bench, comparison, variants, runs, in_flight, repeats)
    for name, (hand, product) in PAIRS.items():
        ratio = comparison.ratio(product, hand)
        comparison.notes[f"{name} ratio"] = round(ratio, 3)
        comparison.notes[f"{name} meets goal"] = ratio >= GOAL
    return comparison
