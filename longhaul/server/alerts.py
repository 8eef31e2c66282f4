"""Delivering failure alerts (:mod:`longhaul.alerts`): signed webhooks, retried with backoff, or log lines.

The notifier runs beside the dispatcher (inside ``longhaul api`` by default, or ``longhaul dispatcher``).
It takes the deliveries that are due (each for a lease, so two processes never send one at once), sends
each, and settles it: delivered, or tried again after 2, 4, 8 … seconds (at most an hour apart), given up
after :data:`longhaul.alerts.MAX_ATTEMPTS`. A webhook is at least once: the receiver dedupes on its
``Idempotency-Key`` (destination, kind, subject), which never changes between attempts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from datetime import timedelta
from typing import Any

import httpx

from longhaul.alerts import AlertStore, Delivery
from longhaul.config import Settings
from longhaul.models import AlertKind, DestinationType
from longhaul.storage import RunStore
from longhaul.webhooks import sign

log = logging.getLogger("longhaul.alerts")

SIGNATURE_HEADER = "Longhaul-Signature"
BATCH = 20  # deliveries sent at once
LEASE = timedelta(seconds=60)  # a delivery taken is another process's again after this, if not settled
POLL_SECONDS = 1.0
HTTP_TIMEOUT = 10.0
ALERTED_RUN_FIELDS = {
    "id", "workflow", "workflow_id", "status", "stage", "error", "event", "event_id", "tags", "created_at",
    "finished_at",
}  # fmt: skip


class Notifier:
    def __init__(
        self, alerts: AlertStore, runs: RunStore, settings: Settings, http: httpx.AsyncClient
    ) -> None:
        self.alerts = alerts
        self.runs = runs
        self.settings = settings
        self.http = http
        self.sent = 0  # settled as delivered by this notifier (for tests)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set."""
        while not stop.is_set():
            try:
                taken = await self.alerts.claim_due(BATCH, LEASE)
                await asyncio.gather(*(self.deliver(delivery) for delivery in taken))
            except Exception:
                log.exception("alert deliveries failed; retrying")
                taken = []
            if len(taken) < BATCH:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), POLL_SECONDS)

    async def deliver(self, delivery: Delivery) -> None:
        body = await self.payload(delivery)
        if delivery.destination.type == DestinationType.LOG:
            run = body["run"]
            log.error(
                "ALERT %s: run %s (workflow %s, %s): %s; %s", delivery.kind, run["id"], run["workflow"],
                run["workflow_id"], run["error"] or run["status"], body["links"]["temporal_ui"],
                extra={"run_id": run["id"], "workflow_id": run["workflow_id"]},
            )  # fmt: skip
            error = None
        else:
            error = await self._post(delivery, json.dumps(body, separators=(",", ":")).encode())
        await self.alerts.settle(delivery, error)
        if error is None:
            self.sent += 1
        else:
            log.warning("alert %s of run %s to %s not delivered (attempt %d): %s", delivery.kind,
                        delivery.run_id, delivery.destination.url, delivery.attempts, error)  # fmt: skip

    async def _post(self, delivery: Delivery, body: bytes) -> str | None:
        """POST the alert; None if the receiver took it (2xx), else what went wrong."""
        assert delivery.destination.url is not None and delivery.secret is not None
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(delivery.secret, int(time.time()), body),
            "Idempotency-Key": _key(delivery),
            "User-Agent": "longhaul-alerts",
        }
        try:
            response = await self.http.post(
                delivery.destination.url, content=body, headers=headers, timeout=HTTP_TIMEOUT
            )
        except httpx.HTTPError as error:
            return f"{type(error).__name__}: {error}"
        return None if response.is_success else f"HTTP {response.status_code}"

    async def payload(self, delivery: Delivery) -> dict[str, Any]:
        """What the alert says: the kind, the run (id, workflow, error …), the waitpoint if one timed out,
        and links to the run in the API and the Temporal UI."""
        run = await self.runs.get(delivery.run_id, logs=delivery.kind == AlertKind.WAITPOINT_TIMED_OUT)
        assert run is not None  # a delivery is written in the transaction that changed its run
        waitpoint = next((w for w in run.waitpoints if w.id == delivery.subject), None)
        return {
            "id": _key(delivery),
            "type": delivery.kind.value,
            "created_at": delivery.created_at.isoformat(),
            "tenant": run.tenant,
            "run": run.model_dump(mode="json", include=ALERTED_RUN_FIELDS),
            "waitpoint": waitpoint.model_dump(
                mode="json", include={"id", "kind", "description", "timeout_at"}
            )
            if waitpoint
            else None,
            "links": {
                "run": f"{self.settings.api_url}/api/runs/{run.id}",
                "temporal_ui": self.settings.temporal_ui_link(run.workflow_id),
            },
        }


def _key(delivery: Delivery) -> str:
    return f"{delivery.destination.id}/{delivery.kind.value}/{delivery.subject}"
