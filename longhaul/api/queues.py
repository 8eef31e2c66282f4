"""The run queue as the caller's tenant sees it: each queue's waiting, delayed and running runs, how long
the oldest has waited, and the flow control it declares; and what is set on it while it runs (pauses,
fair-share weights)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response

from longhaul.api.deps import ADMIN_ERRORS, ERRORS, JSON_BODY, Admin, CallerOf, Service
from longhaul.flow import scope_queue
from longhaul.keys import Caller
from longhaul.models import (
    FairWeight,
    LimitRequest,
    LimitSet,
    PauseRequest,
    QueueInfo,
    QueuePause,
    WeightRequest,
)
from longhaul.queue import Pause
from longhaul.server.envelopes import ConflictError, NotFoundError
from longhaul.workflows.pipeline import Subscription

router = APIRouter(tags=["queues"])


@router.get("/api/queues", response_model=list[QueueInfo], responses=ERRORS)
async def list_queues(service: Service, caller: CallerOf) -> list[QueueInfo]:
    """Every queue of the catalog with the tenant's runs in it (and the weights set: an admin sees
    every tenant's, a tenant its own)."""
    tenant = caller.tenant
    depth = {row.queue: row for row in await service.queue.depth(tenant=tenant)}
    weights = await service.queue.weights()
    pauses = await service.queue.pauses()
    limits = await service.queue.limits() if caller.admin else []
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
    for pause in pauses:
        if pause.queue in declared and (pause.key in (None, tenant) or caller.admin):
            declared[pause.queue].pauses.append(_pause(pause))
    for override in limits:
        if (queue := scope_queue(override.scope)) in declared:
            declared[queue].limits[override.scope] = override.limit
    for weight in weights:
        mine = weight.key == tenant or weight.key.startswith(f"{tenant}/")
        if weight.queue in declared and (mine or caller.admin):
            declared[weight.queue].weights[weight.key] = weight.weight
    return sorted(declared.values(), key=lambda info: info.name)


def _pause(pause: Pause) -> QueuePause:
    return QueuePause.model_validate(pause, from_attributes=True)


def _by(caller: Caller) -> str | None:
    """Who set a control, for the record of it."""
    return f"key {caller.key_id}" if caller.key_id else None


def _declared(service: Service, queue: str) -> list[Subscription]:
    """The subscriptions of ``queue``; 404 naming the known queues if there is none."""
    subscriptions = [sub for sub in service.catalog.subscriptions if sub.queue_name == queue]
    if not subscriptions:
        known = ", ".join(sorted({sub.queue_name for sub in service.catalog.subscriptions}))
        raise NotFoundError(f"no queue '{queue}'; queues: {known}")
    return subscriptions


def _own_key(caller: Caller, asked: PauseRequest) -> None:
    """An admin key pauses anything; a tenant key only its own tenant's runs."""
    if not caller.admin and asked.key != caller.tenant:
        raise HTTPException(
            status_code=403,
            detail=f"a tenant key pauses and resumes only its own tenant's runs of a queue "
            f'(send {{"key": "{caller.tenant}"}}); the whole queue and other tenants need an admin key',
        )


@router.post(
    "/api/queues/{queue}/pause", response_model=QueuePause, responses=ADMIN_ERRORS, dependencies=JSON_BODY
)
async def pause_queue(queue: str, asked: PauseRequest, service: Service, caller: CallerOf) -> QueuePause:
    """Hold the queue's pending runs (of tenant ``key`` only, if given) until resumed: they stay
    pending, saying why; runs already started go on. Stored: restarts and deploys keep it."""
    _declared(service, queue)
    _own_key(caller, asked)
    return _pause(await service.queue.pause(queue, asked.key, asked.reason, _by(caller)))


@router.post("/api/queues/{queue}/resume", status_code=204, responses=ADMIN_ERRORS, dependencies=JSON_BODY)
async def resume_queue(queue: str, asked: PauseRequest, service: Service, caller: CallerOf) -> Response:
    """Let the held runs start again (404 if it was not paused)."""
    _declared(service, queue)
    _own_key(caller, asked)
    if not await service.queue.resume(queue, asked.key):
        what = f"tenant {asked.key}'s runs of queue '{queue}'" if asked.key else f"queue '{queue}'"
        raise NotFoundError(f"{what} not paused")
    return Response(status_code=204)


@router.put(
    "/api/queues/{queue}/limits", response_model=LimitSet, responses=ADMIN_ERRORS, dependencies=JSON_BODY
)
async def set_limit(queue: str, asked: LimitRequest, service: Service, admin: Admin) -> LimitSet:
    """Hold one scope of the queue to ``limit`` in place of its declared concurrency or rate limit, from
    the next claim on (stored: restarts and deploys keep it). Admin keys only."""
    _declared(service, queue)
    if scope_queue(asked.scope) != queue:
        raise HTTPException(status_code=422, detail=[{"type": "value_error", "loc": ["body", "scope"],
                            "msg": f"'{asked.scope}' is not a scope of queue '{queue}'"}])  # fmt: skip
    override = await service.queue.set_limit(asked.scope, asked.limit, _by(admin))
    return LimitSet.model_validate(override, from_attributes=True)


@router.delete("/api/queues/{queue}/limits/{scope:path}", status_code=204, responses=ADMIN_ERRORS)
async def clear_limit(queue: str, scope: str, service: Service, admin: Admin) -> Response:
    """Back to the declared limit (404 if none was set). Admin keys only."""
    _declared(service, queue)
    if scope_queue(scope) != queue or not await service.queue.clear_limit(scope):
        raise NotFoundError(f"no limit set for '{scope}' in queue '{queue}'")
    return Response(status_code=204)


def _fair_queue(service: Service, queue: str) -> None:
    """Refuse a queue that does not exist (404) or has no fair share (409), naming it."""
    if not any(sub.fair_share for sub in _declared(service, queue)):
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
    return FairWeight.model_validate(weight, from_attributes=True)


@router.delete("/api/queues/{queue}/weights/{key:path}", status_code=204, responses=ADMIN_ERRORS)
async def clear_weight(queue: str, key: str, service: Service, admin: Admin) -> Response:
    """Back to weight 1 (404 if none was set). Admin keys only."""
    _fair_queue(service, queue)
    if not await service.queue.clear_weight(queue, key):
        raise NotFoundError(f"no weight set for '{key}' in queue '{queue}'")
    return Response(status_code=204)
