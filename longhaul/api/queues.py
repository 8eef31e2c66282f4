"""The run queue as the caller's tenant sees it: each queue's waiting, delayed and running runs, how long
the oldest has waited, and the flow control it declares."""

from __future__ import annotations

from fastapi import APIRouter

from longhaul.api.deps import ERRORS, Service, Tenant
from longhaul.models import QueueInfo

router = APIRouter(tags=["queues"])


@router.get("/api/queues", response_model=list[QueueInfo], responses=ERRORS)
async def list_queues(service: Service, tenant: Tenant) -> list[QueueInfo]:
    """Every queue of the catalog with the tenant's runs in it."""
    depth = {row.queue: row for row in await service.queue.depth(tenant=tenant)}
    declared: dict[str, QueueInfo] = {}
    for sub in service.catalog.subscriptions:
        info = declared.setdefault(
            sub.queue_name,
            QueueInfo(name=sub.queue_name, workflows=[], rules=[], pending=0, delayed=0, running=0,
                      oldest_wait_seconds=0.0),
        )  # fmt: skip
        info.workflows = list(dict.fromkeys([*info.workflows, sub.workflow_name]))
        info.rules = list(dict.fromkeys([*info.rules, *sub.flow_rules()]))
    for name, info in declared.items():
        if (row := depth.get(name)) is not None:
            info.pending, info.delayed, info.running = row.pending, row.delayed, row.active
            info.oldest_wait_seconds = round(row.oldest_wait, 3)
    return sorted(declared.values(), key=lambda info: info.name)
