"""What the API's endpoints depend on: who calls (API key → caller, tenant, admin), that a body is JSON,
the process's service objects (made in the app's lifespan), and the error answers endpoints document."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from temporalio.client import Client

from longhaul.config import Settings
from longhaul.dead_letters import DeadLetters
from longhaul.keys import Caller
from longhaul.models import RunRecord, RunRef, Via
from longhaul.server.service import RunService
from longhaul.server.tenant_schedules import TenantSchedules
from longhaul.server.waitpoints import WaitpointService
from longhaul.storage import RunStore

RUN_PATH = "/api/runs/{run_id}"


async def current_caller(request: Request) -> Caller:
    """Who the request acts for, from its API key (``Authorization: Bearer <key>`` or ``X-API-Key``)."""
    header = request.headers.get("authorization", "")
    presented = (
        header[7:].strip() if header.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
    )
    if not presented:
        raise HTTPException(
            status_code=401,
            detail="an API key is required: Authorization: Bearer <key> (longhaul keys create --tenant T)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    caller: Caller | None = await request.app.state.keys.caller_of(presented)
    if caller is None:
        raise HTTPException(
            status_code=401, detail="invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"}
        )
    return caller


async def current_tenant(caller: Annotated[Caller, Depends(current_caller)]) -> str:
    return caller.tenant


async def current_admin(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
    """An admin key: what belongs to no tenant (global schedules, webhook dead letters) is theirs alone."""
    if not caller.admin:
        raise HTTPException(
            status_code=403,
            detail="this needs an admin key (longhaul keys create --tenant T --role admin); "
            f"this key acts for tenant {caller.tenant} only",
        )
    return caller


async def json_body(request: Request) -> None:
    """Bodies are JSON: another declared Content-Type is a 415 naming the expected one (no header at all
    is read as JSON, as ``curl --data`` users expect)."""
    content_type = request.headers.get("content-type")
    if content_type is None:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise HTTPException(
            status_code=415, detail=f"Content-Type must be application/json, not '{media or 'empty'}'"
        )


# Dependencies are async: a plain def would run in a thread.
async def _service(request: Request) -> RunService:
    service: RunService = request.app.state.service
    return service


async def _store(request: Request) -> RunStore:
    store: RunStore = request.app.state.service.store
    return store


async def _client(request: Request) -> Client:
    client: Client = request.app.state.service.client
    return client


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.service.settings
    return settings


async def _waitpoints(request: Request) -> WaitpointService:
    waitpoints: WaitpointService = request.app.state.waitpoints
    return waitpoints


async def _tenant_schedules(request: Request) -> TenantSchedules:
    schedules: TenantSchedules = request.app.state.tenant_schedules
    return schedules


async def _dead_letters(request: Request) -> DeadLetters:
    letters: DeadLetters = request.app.state.dead_letters
    return letters


JSON_BODY = [Depends(json_body)]
Tenant = Annotated[str, Depends(current_tenant)]
CallerOf = Annotated[Caller, Depends(current_caller)]
Admin = Annotated[Caller, Depends(current_admin)]
Service = Annotated[RunService, Depends(_service)]
Store = Annotated[RunStore, Depends(_store)]
TemporalClient = Annotated[Client, Depends(_client)]
AppSettings = Annotated[Settings, Depends(_settings)]
Letters = Annotated[DeadLetters, Depends(_dead_letters)]
Waitpoints = Annotated[WaitpointService, Depends(_waitpoints)]
Schedules = Annotated[TenantSchedules, Depends(_tenant_schedules)]


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed JSON"},
    404: {"description": "Unknown event, run or signal"},
    409: {
        "description": "The run's status does not allow this, or an event id was reused with another payload"
    },
    413: {"description": "Body larger than LONGHAUL_MAX_BODY_BYTES"},
    415: {"description": "The body is not declared as JSON (Content-Type)"},
    422: {"description": "Invalid input; each error names its field path (loc)"},
    503: {"description": "Temporal is unavailable; retry after Retry-After seconds"},
}
ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    403: {"description": "The key is not an admin key"},
}


def ref(request: Request, run: RunRecord, via: Via) -> RunRef:
    """How an answer points at a run."""
    return RunRef(
        run_id=run.id,
        workflow=run.workflow,
        status=run.status,
        via=via,
        # Formatted, not url_for: that walks the routes on every event (measured: a tenth of the API's CPU).
        status_url=f"{str(request.base_url).rstrip('/')}{RUN_PATH.format(run_id=run.id)}",
    )
