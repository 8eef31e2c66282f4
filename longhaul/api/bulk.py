"""Bulk actions: cancel, replay or resume every run a filter matches — counted first with a dry run, then
carried out by a ``bulk-action`` run whose record is the action's record (progress, counts, outcome)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import Field

from longhaul.activities.bulk import BULK_REQUESTED, BulkRequested
from longhaul.api.deps import ERRORS, JSON_BODY, Service, Tenant, ref
from longhaul.models import ID_PATTERN, SAMPLE, BulkAnswer
from longhaul.server.envelopes import EventEnvelope, InvalidInputError

router = APIRouter(tags=["runs"])


class BulkRequest(BulkRequested):
    dry_run: bool = Field(default=False, description="Count (and name the first runs), change nothing.")
    all: bool = Field(
        default=False,
        description="Act on every run of the tenant: required where the filter is empty (a bare "
        '{"action": "cancel"} must not cancel everything by accident), refused beside a filter.',
    )
    id: str | None = Field(
        default=None, max_length=200, pattern=ID_PATTERN, description="Makes the request idempotent."
    )


@router.post(
    "/api/bulk-actions",
    response_model=BulkAnswer,
    responses={
        202: {"model": BulkAnswer, "description": "Accepted: the bulk-action run carries it out"},
        **ERRORS,
    },
    dependencies=JSON_BODY,
)
async def bulk_action(
    asked: BulkRequest, request: Request, response: Response, service: Service, tenant: Tenant
) -> BulkAnswer:
    """Cancel, replay or resume every run of this key's tenant the filter matches (workflow, status, tag,
    event, created_after/created_before). ``dry_run``: 200 with the count. Otherwise 202: a ``bulk-action``
    run acts on the runs that exist now, a page at a time; follow it like any run (its progress, its
    metadata's counts, its output: done, skipped and failed with reasons)."""
    _check_scope(asked)
    where = asked.filter.of(tenant)
    matched = await service.store.count_matching(where)
    sample = [run.id for run in (await service.store.page(where, limit=SAMPLE)).runs]
    answer = BulkAnswer(
        action=asked.action, dry_run=asked.dry_run, matched=matched, sample=sample, status="counted"
    )
    if asked.dry_run:
        return answer
    payload = BulkRequested.model_validate(asked.model_dump(include={"action", "filter", "reason"}))
    envelope = EventEnvelope(
        id=asked.id, payload=payload.model_dump(mode="json"), tags=[f"bulk:{asked.action}"]
    )
    accepted = await service.send(BULK_REQUESTED.name, envelope, tenant=tenant)
    [delivery] = accepted.deliveries
    response.status_code = 202
    return answer.model_copy(update={"run": ref(request, delivery.run, delivery.via), "status": "accepted"})


def _check_scope(asked: BulkRequest) -> None:
    """An empty filter acts on every run only when ``all`` says so (a dry run may count them all)."""
    filtered = bool(asked.filter.model_dump(exclude_none=True))
    if filtered and asked.all:
        problem = '"all": true acts on every run of the tenant; send it without a filter, or drop it'
    elif not filtered and not asked.all and not asked.dry_run:
        problem = 'the filter is empty, which matches every run of the tenant: send "all": true to mean it'
    else:
        return
    raise InvalidInputError([{"type": "value_error", "loc": ["all"], "msg": problem}])
