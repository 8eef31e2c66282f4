"""``python -m bench.plain_worker TASK_QUEUE [WEBHOOK_PORT]``: the hand-written temporalio baselines.

A plain Worker with the baseline workflows, the three step activities and the shipped pipelines' steps
written by hand (bench/plain_pipelines.py) and their activities, in its own process like ``longhaul
worker``; payment calls on ``TASK_QUEUE-payments`` as the product does. With WEBHOOK_PORT it also
receives the payment provider's signed webhooks, as a hand-written service would: verify, then signal
the order's workflow. App storage and the provider come from the ``LONGHAUL_*`` and ``ORDERS_*`` settings.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from contextlib import AsyncExitStack

import httpx
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from activities.hello import compose_greeting
from activities.orders.models import PaymentConfirmed
from activities.orders.payments import PaymentActivities
from activities.orders.settings import OrderSettings
from activities.orders.stock import OrderActivities
from activities.orders.store import OrderStore
from bench.pipelines import BASELINE_WORKFLOWS, STEP_ACTIVITIES
from bench.plain_pipelines import PLAIN_PIPELINES, plain_order_id
from longhaul.config import load_settings
from longhaul.db import Database
from longhaul.webhooks import SIGNATURE_HEADER, BadSignatureError, verify


def webhook_receiver(client: Client, secret: str) -> FastAPI:
    app = FastAPI()

    @app.post("/webhook")
    async def webhook(request: Request) -> dict[str, bool]:
        body = await request.body()
        try:
            verify(secret, request.headers.get(SIGNATURE_HEADER), body)
        except BadSignatureError as error:
            raise HTTPException(401, str(error)) from error
        event = json.loads(body)
        confirmation = PaymentConfirmed.model_validate(
            {k: v for k, v in event["data"].items() if k in PaymentConfirmed.model_fields}
        )
        await client.get_workflow_handle(plain_order_id(confirmation.order_id)).signal(
            "payment.confirmed", confirmation
        )
        return {"received": True}

    return app


async def main(task_queue: str, webhook_port: int | None) -> None:
    settings = load_settings()
    order_settings = OrderSettings.of(settings)
    client = await Client.connect(os.environ["TEMPORAL_ADDRESS"], data_converter=pydantic_data_converter)
    db = Database(settings.app_database_url)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with AsyncExitStack() as running, httpx.AsyncClient() as http:
        orders = OrderActivities(order_settings, OrderStore(db), http)
        payments = PaymentActivities(order_settings, http)
        main_worker = Worker(
            client,
            task_queue=task_queue,
            workflows=[*BASELINE_WORKFLOWS, *PLAIN_PIPELINES],
            activities=[*STEP_ACTIVITIES, compose_greeting, orders.plan, orders.reserve, orders.notify],
        )
        payment_worker = Worker(
            client,
            task_queue=f"{task_queue}-payments",
            activities=[payments.charge],
            max_concurrent_activities=order_settings.payments_concurrency,
            max_task_queue_activities_per_second=order_settings.payments_rate_limit,
        )
        await running.enter_async_context(main_worker)
        await running.enter_async_context(payment_worker)
        if webhook_port is not None:
            app = webhook_receiver(client, order_settings.payments_webhook_secret)
            config = uvicorn.Config(
                app, host="127.0.0.1", port=webhook_port, log_config=None, access_log=False
            )
            server = uvicorn.Server(config)
            serving = asyncio.create_task(server.serve())
            await stop.wait()
            server.should_exit = True
            await serving
        else:
            await stop.wait()
    await db.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None))
    sys.stdout.flush()
    os._exit(0)  # no interpreter teardown with the SDK's runtime alive (sdk-python #300)
