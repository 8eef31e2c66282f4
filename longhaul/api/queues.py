"""The run queue as the caller's tenant sees it: each queue's waiting, delayed and running runs, how long
the oldest has waited, and the flow control it declares."""

from __future__ import annotations

from fastapi import APIRouter, Response

from longhaul.api.deps import ADMIN_ERRORS, ERRORS, JSON_BODY, Admin, CallerOf, Service
from longhaul.models import FairWeight, QueueInfo, WeightRequest
from longhaul.server.envelopes import ConflictError, NotFoundError

router = APIRouter(tags=["queues"])


@router.get("/api/queues", response_model=list[QueueInfo], responses=ERRORS)
async def list_queues(service: Service, caller: CallerOf) -> list[QueueInfo]:
    """Every queue of the catalog with the tenant's runs in it (and the weights set: an admin sees
    every tenant's, a tenant its own)."""
    tenant = caller.tenant
    depth = {row.queue: row for row in await service.queue.depth(tenant=tenant)}
    weights = await service.queue.weights()
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
    for weight in weights:
        mine = weight.key == tenant or weight.key.startswith(f"{tenant}/")
        if weight.queue in declared and (mine or caller.admin):
            declared[weight.queue].weights[weight.key] = weight.weight
    return sorted(declared.values(), key=lambda info: info.name)


def _fair_queue(service: Service, queue: str) -> None:
    """Refuse a queue that does not exist (404) or has no fair share (409), naming it."""
    subscriptions = [sub for sub in service.catalog.subscriptions if sub.queue_name == queue]
    if not subscriptions:
        known = ", ".join(sorted({sub.queue_name for sub in service.catalog.subscriptions}))
        raise NotFoundError(f"no queue '{queue}'; queues: {known}")
    if not any(sub.fair_share for sub in subscriptions):
        raise ConflictError(f"queue '{queue}' has no fair share: its subscriptions declare no FairShare")


@router.put(
    "/api/queues/{queue}/weights/{key:path}",
    response_model=FairWeight,
    responses=ADMIN_ERRORS,
    dependencies=JSON_BODY,
)
async def set_weight(
    queue: str, key: str, asked: WeightRequest, service: Service, admin: Admin
) -> FairWeight:
    """Give a key value of a fair-share queue (a tenant, or ``<tenant>/<value>``) ``weight`` turns to a
    weight-1 value's one, from the next claim on. Kept in app storage: it outlives restarts and deploys.
    Admin keys only."""
    _fair_queue(service, queue)
    weight = await service.queue.set_weight(queue, key, asked.weight)
    return FairWeight(queue=weight.queue, key=weight.key, weight=weight.weight)


@router.delete("/api/queues/{queue}/weights/{key:path}", status_code=204, responses=ADMIN_ERRORS)
async def clear_weight(queue: str, key: str, service: Service, admin: Admin) -> Response:
    """Back to weight 1 (404 if none was set). Admin keys only."""
    _fair_queue(service, queue)
    if not await service.queue.clear_weight(queue, key):
        raise NotFoundError(f"no weight set for '{key}' in queue '{queue}'")
    return Response(status_code=204)
