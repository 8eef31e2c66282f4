"""Liveness of the API and its two dependencies."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from longhaul.api.deps import Store, TemporalClient

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    database: str
    temporal: str


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
async def health(store: Store, client: TemporalClient) -> Any:
    """Liveness of the API and its two dependencies: app storage and Temporal."""
    database = temporal = "ok"
    try:
        await store.db.ping()
    except Exception as error:
        database = f"error: {error}"
    try:
        await client.service_client.check_health()
    except Exception as error:
        temporal = f"error: {error}"
    ok = database == temporal == "ok"
    body = Health(status="ok" if ok else "degraded", database=database, temporal=temporal)
    return body if ok else JSONResponse(status_code=503, content=body.model_dump())
