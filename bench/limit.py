"""Closeness to the server's limit: the empty workflow's rate is the floor's ceiling on this machine.

An empty workflow (one workflow task, no activities; hand-written temporalio) costs the server the least a
workflow can. The ``hello`` pipeline (run record, progress, one activity) and the ``order.created``
pipeline (stock reserved in app storage, a charge over HTTP to the local payment provider, its signed
webhook confirming through the API, a notification) are sent through the event API as users send them,
and their rates are reported as ratios of the empty workflow's, measured interleaved in one run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

from bench.harness import (
    UNLIMITED_INGEST,
    Comparison,
    api_client,
    each,
    interleaved,
    post_event,
    stack,
    warm_up,
)
from bench.pipelines import Empty
from longhaul.db import Database
from longhaul.migrations import upgrade
from longhaul.order_store import OrderStore, Product
from starters.service import workflow_id_for

GOAL = 0.9
PLAIN_QUEUE = "bench-plain"
TENANT = "bench"
PRODUCT = Product(product_id="sku-bench", name="benchmark item", price=Decimal("1.00"), stock=10**9)


async def run(runs: int, in_flight: int, repeats: int) -> Comparison:
    comparison = Comparison("limit", baseline="empty workflow", work=runs)
    comparison.notes.update(runs=runs, in_flight=in_flight, goal=GOAL)
    async with stack("limit") as bench:
        db = Database(bench.settings().app_database_url)
        await upgrade(db)
        await OrderStore(db).add_missing_products(TENANT, [PRODUCT])
        await db.close()
        await bench.plain_worker(PLAIN_QUEUE)
        _, url, key = await bench.api(**UNLIMITED_INGEST)
        payments_url = await bench.payments(url)
        # The provider here takes any rate; the setting guards a real provider's limit.
        await bench.worker(payments_url=payments_url, payments_rate_limit="100000")
        client = bench.client
        async with api_client(url, key, in_flight) as http:

            def empty(batch: str) -> Callable[[int], Awaitable[None]]:
                async def one(i: int) -> None:
                    handle = await client.start_workflow(
                        Empty.run, id=f"empty-{batch}-{i}", task_queue=PLAIN_QUEUE
                    )
                    await handle.result()

                return one

            def pipeline(
                event: str, workflow: str, payload: Callable[[str], dict[str, object]], batch: str
            ) -> Callable[[int], Awaitable[None]]:
                async def one(i: int) -> None:
                    instance = f"{batch}-{i}"
                    await post_event(
                        http, f"/api/events/{event}", {"id": instance, "payload": payload(instance)}
                    )
                    await client.get_workflow_handle(workflow_id_for(workflow, TENANT, instance)).result()

                return one

            def hello(batch: str) -> Callable[[int], Awaitable[None]]:
                return pipeline("hello", "hello", lambda name: {"name": name}, batch)

            def order(batch: str) -> Callable[[int], Awaitable[None]]:
                def payload(order_id: str) -> dict[str, object]:
                    item = {"product_id": PRODUCT.product_id, "quantity": 1, "price": "1.00"}
                    return {"order_id": order_id, "user_id": "bench", "items": [item]}

                # once per order id: the workflow id's instance is the order id
                return pipeline("order.created", "order-processing", payload, batch)

            variants = {
                "empty workflow": each(empty),
                "hello pipeline": each(hello),
                "order pipeline": each(order),
            }
            await warm_up(variants, min(runs, 50), in_flight)
            await interleaved(bench, comparison, variants, runs, in_flight, repeats)
    for variant in ("hello pipeline", "order pipeline"):
        comparison.notes[f"{variant} ratio"] = round(comparison.ratio(variant), 3)
    return comparison
