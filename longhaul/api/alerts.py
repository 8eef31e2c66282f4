"""Failure alerts: the tenant's destinations (signed webhooks or the log) for run failed, run expired and
waitpoint timed out, per workflow or for all (docs/alerts.md)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response

from longhaul.alerts import AlertStore, DestinationRequest
from longhaul.api.deps import ERRORS, JSON_BODY, Service, Tenant
from longhaul.egress import EgressPolicy, EgressRefusedError
from longhaul.models import AlertDestination

router = APIRouter(tags=["alerts"])


def _alerts(request: Request) -> AlertStore:
    return AlertStore(request.app.state.service.store.db)


@router.post(
    "/api/alert-destinations",
    status_code=201,
    response_model=AlertDestination,
    responses=ERRORS,
    dependencies=JSON_BODY,
)
async def add_destination(
    asked: DestinationRequest, request: Request, service: Service, tenant: Tenant
) -> AlertDestination:
    """Send this tenant's alerts (of ``kinds``; of ``workflow`` only, if given) to a webhook or the log.
    The answer carries the webhook's signing secret, shown this once."""
    if asked.workflow is not None and service.catalog.workflow(asked.workflow) is None:
        known = ", ".join(service.catalog.workflow_names)
        raise HTTPException(status_code=422, detail=[{"type": "value_error", "loc": ["body", "workflow"],
                            "msg": f"unknown workflow '{asked.workflow}'; known: {known}"}])  # fmt: skip
    if asked.url is not None:  # checked again at each delivery: what a name resolves to can change
        try:
            await EgressPolicy.allowing(service.settings.alert_private_hosts).check(str(asked.url))
        except EgressRefusedError as error:
            raise HTTPException(status_code=422, detail=[{"type": "value_error", "loc": ["body", "url"],
                                "msg": str(error)}]) from error  # fmt: skip
    return await _alerts(request).add(tenant, asked)


@router.get("/api/alert-destinations", response_model=list[AlertDestination], responses=ERRORS)
async def list_destinations(request: Request, tenant: Tenant) -> list[AlertDestination]:
    """The tenant's destinations (without their secrets)."""
    return await _alerts(request).list(tenant)


@router.delete("/api/alert-destinations/{destination_id}", status_code=204, responses=ERRORS)
async def remove_destination(destination_id: str, request: Request, tenant: Tenant) -> Response:
    """Stop sending alerts there (deliveries not sent yet are dropped)."""
    if not await _alerts(request).remove(tenant, destination_id):
        raise HTTPException(status_code=404, detail=f"no alert destination '{destination_id}'")
    return Response(status_code=204)
