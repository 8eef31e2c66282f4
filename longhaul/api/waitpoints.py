"""Waitpoint tokens: list, read, complete (API key), complete by callback URL (its signature)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, Field

from longhaul.api.deps import ERRORS, JSON_BODY, CallerOf, Tenant, Waitpoints
from longhaul.models import TAG_PATTERN, Waitpoint, WaitpointStatus

router = APIRouter(tags=["waitpoints"])

WAITPOINT_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    409: {"description": "Completed already: the body's `waitpoint` is the first completion"},
    410: {"description": "The token timed out, or its run closed: it takes no completion"},
}


class Completion(BaseModel):
    output: Any = Field(
        default=None,
        description="What the run receives: JSON, validated against the kind's model where the pipeline "
        'declares one (e.g. order.approval: {"approved": true, "reason": "…"}).',
    )


@router.get("/api/waitpoints", response_model=list[Waitpoint], responses=ERRORS)
async def list_waitpoints(
    waitpoints: Waitpoints,
    tenant: Tenant,
    status: WaitpointStatus | None = None,
    kind: str | None = None,
    run_id: str | None = None,
    tag: Annotated[str | None, Query(max_length=100, pattern=TAG_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[Waitpoint]:
    """The tenant's waitpoint tokens, newest first, filtered."""
    found = await waitpoints.store.list(tenant, status=status, kind=kind, run_id=run_id, tag=tag, limit=limit)
    return [waitpoints.shown(token) for token in found]


@router.get("/api/waitpoints/{waitpoint_id}", response_model=Waitpoint, responses=ERRORS)
async def get_waitpoint(waitpoint_id: str, waitpoints: Waitpoints, tenant: Tenant) -> Waitpoint:
    """A token: status, who completed it and when, its output and its callback URL."""
    return await waitpoints.get(waitpoint_id, tenant=tenant)


@router.post(
    "/api/waitpoints/{waitpoint_id}/complete",
    response_model=Waitpoint,
    responses=WAITPOINT_ERRORS,
    dependencies=JSON_BODY,
)
async def complete_waitpoint(
    waitpoint_id: str, completion: Completion, waitpoints: Waitpoints, caller: CallerOf
) -> Waitpoint:
    """Complete a token of the key's tenant; its run goes on with ``output``. Once: a second completion
    is a 409 carrying the first."""
    by = f"key:{caller.key_id}" if caller.key_id else "key"
    return await waitpoints.complete(waitpoint_id, completion.output, by=by, tenant=caller.tenant)


@router.post(
    "/api/waitpoints/{waitpoint_id}/callback/{signature}",
    response_model=Waitpoint,
    responses={**WAITPOINT_ERRORS, 403: {"description": "The URL's signature was not issued here"}},
    dependencies=JSON_BODY,
)
async def callback_waitpoint(
    waitpoint_id: str,
    signature: str,
    waitpoints: Waitpoints,
    output: Annotated[Any, Body(description="What the run receives (the whole JSON body).")] = None,
) -> Waitpoint:
    """Complete a token through its callback URL, without an API key: the signed URL is the credential
    (single use, void after the token's timeout). The whole JSON body is the output."""
    return await waitpoints.callback(waitpoint_id, signature, output)
