"""The HTTP API: send events, read and act on runs. Small typed endpoints; the pydantic schema is the
validation, and every refusal names the field and changes nothing."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi_offline import FastAPIOffline
from pydantic import AwareDatetime, BaseModel, Field
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from longhaul.codec import CodecError
from longhaul.config import Settings, load_settings
from longhaul.db import Database
from longhaul.dead_letters import DeadLetterPage, DeadLetters, DeadLetterStatus, WebhookOutcome
from longhaul.keys import Caller, KeyStore
from longhaul.migrations import prepare
from longhaul.models import (
    BatchAccepted,
    EventAccepted,
    RunPage,
    RunRecord,
    RunRef,
    RunStatus,
)
from longhaul.storage import InvalidCursorError, RunFilter, RunStore
from longhaul.telemetry import RequestMetrics, runtime, start_tracing, stop_tracing
from longhaul.temporal import connect, ensure_search_attributes, is_unavailable, payload_codec
from longhaul.webhooks import SIGNATURE_HEADER, BadSignatureError, verify
from starters import payment_webhook as payment_events
from starters import schedules
from starters.schedules import ScheduleInfo
from starters.service import (
    MAX_BATCH,
    Accepted,
    BatchItem,
    ConflictError,
    EventEnvelope,
    InvalidInputError,
    NotFoundError,
    RunService,
    TemporalUnavailableError,
)
from workflows.catalog import Catalog, load_catalog

log = logging.getLogger("longhaul.api")

RETRY_AFTER_SECONDS = 5
STREAM_POLL_SECONDS = 0.25
STREAM_KEEPALIVE_SECONDS = 15.0


class BatchRequest(BaseModel):
    events: list[BatchItem] = Field(min_length=1, max_length=MAX_BATCH)


class Backfill(BaseModel):
    start: AwareDatetime
    end: AwareDatetime


_SCHEDULE_ACTIONS: dict[str, Callable[[Client, str], Awaitable[None]]] = {
    "pause": lambda client, schedule: schedules.pause(client, schedule, "paused through the API"),
    "unpause": lambda client, schedule: schedules.unpause(client, schedule, "unpaused through the API"),
    "trigger": schedules.trigger,
}


async def _schedule_call(schedule: str, call: Awaitable[None]) -> None:
    try:
        await call
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise NotFoundError(f"no schedule '{schedule}'") from error
        if is_unavailable(error):
            raise TemporalUnavailableError(f"Temporal is unavailable: {error}") from error
        raise


class CodecPayload(BaseModel):
    """A payload as Temporal's codec protocol carries it: metadata values and data in base64."""

    metadata: dict[str, str] = Field(default_factory=dict)
    data: str = ""

    def to_proto(self) -> Payload:
        return Payload(
            metadata={k: base64.b64decode(v) for k, v in self.metadata.items()},
            data=base64.b64decode(self.data),
        )

    @classmethod
    def from_proto(cls, payload: Payload) -> CodecPayload:
        return cls(
            metadata={k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
            data=base64.b64encode(payload.data).decode(),
        )


class CodecPayloads(BaseModel):
    payloads: list[CodecPayload]


class EventInfo(BaseModel):
    name: str
    version: int
    starts: list[str] = Field(description="Workflows each event of this name starts.")
    signals: list[str] = Field(description="Workflows this event is delivered to as a signal.")
    json_schema: dict[str, Any] = Field(description="JSON Schema of the payload.")


class Health(BaseModel):
    status: str
    database: str
    temporal: str


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


class IngestLimiter:
    """Per-tenant token bucket on event ingest (per API process): ``rate`` events/s, bursts of ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.buckets: dict[str, tuple[float, float]] = {}  # tenant -> (tokens, at)

    def take(self, tenant: str, count: int = 1) -> float:
        """Take ``count`` tokens; returns 0 if allowed, else the seconds to wait before retrying."""
        now = time.monotonic()
        tokens, at = self.buckets.get(tenant, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        if tokens >= count:
            self.buckets[tenant] = (tokens - count, now)
            return 0.0
        self.buckets[tenant] = (tokens, now)
        return (count - tokens) / self.rate


def _limit_ingest(request: Request, tenant: str, count: int) -> None:
    wait = request.app.state.limiter.take(tenant, count)
    if wait:
        raise HTTPException(
            status_code=429,
            detail=f"tenant {tenant} is over its ingest rate limit; retry later",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


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


JSON_BODY = [Depends(json_body)]
Tenant = Annotated[str, Depends(current_tenant)]
CallerOf = Annotated[Caller, Depends(current_caller)]
Admin = Annotated[Caller, Depends(current_admin)]
RUN_PATH = "/api/runs/{run_id}"


async def _service(request: Request) -> RunService:  # async: a plain def would run in a thread
    service: RunService = request.app.state.service
    return service


Service = Annotated[RunService, Depends(_service)]


def create_app(settings: Settings | None = None, catalog: Catalog | None = None) -> FastAPI:
    """The API application for ``catalog`` (default: the one the settings name). The Temporal client and
    the store are made in the lifespan, i.e. in the serving process on its own event loop (clients do
    not survive a fork)."""
    settings = settings or load_settings()
    catalog = catalog or load_catalog(settings.catalog)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.app_database_url)
        await prepare(db, migrate=settings.migrate_on_start)
        store = RunStore(db)
        client = await connect(settings, lazy=True)
        try:
            await ensure_search_attributes(client)
        except Exception as error:  # Temporal may be down now; the worker registers them too
            log.warning("could not check search attributes yet: %s", error)
        app.state.store = store
        app.state.keys = KeyStore(db, cache_seconds=settings.api_key_cache_seconds)
        app.state.dead_letters = DeadLetters(db)
        app.state.limiter = IngestLimiter(settings.ingest_rate_limit, settings.ingest_burst)
        app.state.client = client
        app.state.service = RunService(client, store, settings, catalog)
        try:
            yield
        finally:
            await db.close()
            stop_tracing(settings)

    start_tracing(settings, "longhaul-api")  # before FastAPI(): it traces requests with this provider
    # FastAPI's own /docs and /redoc load their scripts from a CDN; these are served by the app itself.
    app = FastAPIOffline(
        # Exporters are longhaul's settings (LONGHAUL_TRACING), not set up a second time from OTEL_* vars.
        telemetry={"auto_configure": False},
        title="longhaul",
        summary="Durable workflows for long-running processes, on Temporal.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.add_middleware(DocsPolicy)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if settings.metrics_bind:  # around BodyLimit: refusals are counted too
        app.add_middleware(RequestMetrics, runtime=runtime(settings.metrics_bind))
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.codec_cors_origins,
        allow_methods=["POST"],
        allow_headers=["Authorization", "Content-Type", "X-Namespace"],
    )
    payload_codec_ = payload_codec(settings)
    _add_error_handlers(app)

    @app.get("/health", response_model=Health, responses={503: {"model": Health}})
    async def health(request: Request) -> Any:
        """Liveness of the API and its two dependencies: app storage and Temporal."""
        database = temporal = "ok"
        try:
            await request.app.state.store.db.ping()
        except Exception as error:
            database = f"error: {error}"
        try:
            await request.app.state.client.service_client.check_health()
        except Exception as error:
            temporal = f"error: {error}"
        ok = database == temporal == "ok"
        body = Health(status="ok" if ok else "degraded", database=database, temporal=temporal)
        return body if ok else JSONResponse(status_code=503, content=body.model_dump())

    @app.get("/api/events", response_model=list[EventInfo])
    async def list_events(tenant: Tenant) -> list[EventInfo]:
        """The event catalog: every event's schema and what it does."""
        return [
            EventInfo(
                name=name,
                version=event.version,
                starts=[s.workflow_name for s in catalog.subscribers(name)],
                signals=[r.workflow_name for r in catalog.routes_for(name)],
                json_schema=event.schema.model_json_schema(),
            )
            for name, event in sorted(catalog.events.items())
        ]

    @app.post(
        "/api/events/{name}",
        status_code=202,
        response_model=EventAccepted,
        responses=_ERRORS,
        dependencies=JSON_BODY,
    )
    async def send_event(
        name: str, envelope: EventEnvelope, request: Request, service: Service, tenant: Tenant
    ) -> Any:
        """Send an event: each workflow subscribed to it starts once per event id; a routed event signals
        the running workflow its key names. Sending the same id again returns the same runs."""
        _limit_ingest(request, tenant, 1)
        return _accepted(request, await service.send(name, envelope, tenant=tenant))

    @app.post(
        "/api/events",
        status_code=202,
        response_model=BatchAccepted,
        responses=_ERRORS,
        dependencies=JSON_BODY,
    )
    async def send_events(batch: BatchRequest, request: Request, service: Service, tenant: Tenant) -> Any:
        """Send up to 100 events at once. All are validated before any is recorded."""
        _limit_ingest(request, tenant, len(batch.events))
        results = await service.send_batch(batch.events, tenant=tenant)
        return BatchAccepted(results=[_accepted(request, accepted) for accepted in results])

    @app.post(
        "/api/webhooks/payments",
        response_model=WebhookOutcome,
        response_model_exclude_none=True,
        responses={401: {"description": "Bad or missing signature"}, 503: _ERRORS[503]},
    )
    async def payment_webhook(request: Request, service: Service) -> WebhookOutcome:
        """The payment provider's signed webhook: ``charge.succeeded`` becomes ``payment.confirmed``.
        A signed webhook that cannot be processed is acknowledged and kept as a dead letter."""
        body = await request.body()
        try:
            verify(settings.payments_webhook_secret, request.headers.get(SIGNATURE_HEADER), body)
        except BadSignatureError as error:
            raise HTTPException(status_code=401, detail=str(error)) from error
        return await payment_events.receive(service, request.app.state.dead_letters, body)

    @app.get("/api/webhooks/dead-letters", response_model=DeadLetterPage, responses=_ADMIN_ERRORS)
    async def list_dead_letters(
        request: Request, admin: Admin, status: DeadLetterStatus | None = DeadLetterStatus.DEAD
    ) -> DeadLetterPage:
        """Signed webhooks that could not be processed, newest first (admin keys: they belong to no
        tenant)."""
        letters: DeadLetters = request.app.state.dead_letters
        return DeadLetterPage(dead_letters=await letters.list(status))

    @app.post(
        "/api/webhooks/dead-letters/{letter_id}/redeliver",
        response_model=WebhookOutcome,
        response_model_exclude_none=True,
        responses=_ADMIN_ERRORS,
    )
    async def redeliver_dead_letter(
        letter_id: str, request: Request, service: Service, admin: Admin
    ) -> WebhookOutcome:
        """Process a dead letter's webhook again, as received (its signature was checked then). If it
        still cannot be processed it stays dead, with the new reason; the answer says so."""
        letters: DeadLetters = request.app.state.dead_letters
        letter = await letters.get(letter_id)
        if letter is None:
            raise NotFoundError(f"no dead letter '{letter_id}'")
        return await payment_events.redeliver(service, letters, letter)

    @app.post("/codec/{operation}", response_model=CodecPayloads, dependencies=JSON_BODY)
    async def codec(
        operation: Literal["encode", "decode"], body: CodecPayloads, tenant: Tenant
    ) -> CodecPayloads:
        """Temporal's remote codec protocol, so the Temporal UI (or ``temporal --codec-endpoint``) shows
        decrypted payloads to an operator holding an API key."""
        if payload_codec_ is None:
            raise HTTPException(status_code=404, detail="payload encryption is off (LONGHAUL_PAYLOAD_KEYS)")
        try:
            payloads = [p.to_proto() for p in body.payloads]
        except ValueError as error:  # binascii.Error included
            raise HTTPException(status_code=400, detail=f"payloads are not base64: {error}") from error
        try:
            done = await (
                payload_codec_.encode(payloads) if operation == "encode" else payload_codec_.decode(payloads)
            )
        except CodecError as error:
            raise HTTPException(status_code=400, detail=str(error)) from error
        return CodecPayloads(payloads=[CodecPayload.from_proto(p) for p in done])

    @app.get("/api/schedules", response_model=list[ScheduleInfo])
    async def list_schedules(request: Request, caller: CallerOf) -> list[ScheduleInfo]:
        """longhaul's schedules (declared in code, synced to Temporal) with their next run times. They
        are global, so only admin keys see them; a tenant key sees none."""
        return await schedules.describe_all(request.app.state.client) if caller.admin else []

    @app.post(
        "/api/schedules/{schedule}/backfill",
        status_code=202,
        responses=_ADMIN_ERRORS,
        dependencies=JSON_BODY,
    )
    async def backfill_schedule(
        schedule: str, window: Backfill, request: Request, admin: Admin
    ) -> dict[str, str]:
        """Run the actions the schedule would have taken between ``start`` and ``end`` (admin keys)."""
        if window.end <= window.start:
            raise RequestValidationError(
                [{"type": "value_error", "loc": ["body", "end"], "msg": "must be after start"}]
            )
        sid = schedules.schedule_id(schedule)
        await _schedule_call(sid, schedules.backfill(request.app.state.client, sid, window.start, window.end))
        return {"schedule": sid, "done": "backfill"}

    @app.post("/api/schedules/{schedule}/{action}", status_code=202, responses=_ADMIN_ERRORS)
    async def act_on_schedule(
        schedule: str, action: Literal["pause", "unpause", "trigger"], request: Request, admin: Admin
    ) -> dict[str, str]:
        """Pause, unpause or trigger (run now; the overlap policy still applies) a schedule (admin keys).
        ``schedule`` is its id as listed (``longhaul.reconcile-runs``)."""
        sid = schedules.schedule_id(schedule)
        await _schedule_call(sid, _SCHEDULE_ACTIONS[action](request.app.state.client, sid))
        return {"schedule": sid, "done": action}

    @app.get("/api/runs", response_model=RunPage, responses=_ERRORS)
    async def list_runs(
        request: Request,
        tenant: Tenant,
        status: RunStatus | None = None,
        workflow: str | None = None,
        event: str | None = None,
        tag: str | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: str | None = None,
    ) -> RunPage:
        """Runs, newest first, filtered; follow ``next_cursor`` for the next page."""
        where = RunFilter(tenant=tenant, status=status, workflow=workflow, event=event, tag=tag)
        store: RunStore = request.app.state.store
        return await store.list(where, limit=limit, cursor=cursor)

    @app.get(RUN_PATH, response_model=RunRecord, name="get_run", responses=_ERRORS)
    async def get_run(run_id: str, service: Service, tenant: Tenant) -> RunRecord:
        """A run's durable record: status, progress, stage, logs, output, error, timestamps."""
        return await service.get(run_id, tenant=tenant)

    @app.get(
        "/api/runs/{run_id}/stream",
        responses={200: {"content": {"text/event-stream": {}}}, **_ERRORS},
        response_class=StreamingResponse,
    )
    async def stream_run(
        run_id: str, request: Request, service: Service, tenant: Tenant
    ) -> StreamingResponse:
        """Server-sent events: ``run`` with the record whenever status, progress or stage change, then
        ``end`` once the run has finished."""
        await service.get(run_id, tenant=tenant)  # 404 before the stream starts
        return StreamingResponse(
            _run_events(request, service.store, run_id, tenant),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.post("/api/runs/{run_id}/cancel", status_code=202, response_model=RunRecord, responses=_ERRORS)
    async def cancel_run(run_id: str, service: Service, tenant: Tenant) -> RunRecord:
        """Ask the run to stop. Its workflow runs its compensations and records ``cancelled``."""
        return await service.cancel(run_id, tenant=tenant)

    @app.post(
        "/api/runs/{run_id}/signals/{signal}",
        status_code=202,
        response_model=RunRef,
        responses=_ERRORS,
        dependencies=JSON_BODY,
    )
    async def signal_run(
        run_id: str, signal: str, envelope: EventEnvelope, request: Request, service: Service, tenant: Tenant
    ) -> RunRef:
        """Send a signal (human-in-the-loop, external confirmations). ``id`` makes it idempotent."""
        run = await service.signal(run_id, signal, envelope, tenant=tenant)
        return _ref(request, run, "signal")

    @app.post("/api/runs/{run_id}/replay", status_code=202, response_model=RunRef, responses=_ERRORS)
    async def replay_run(run_id: str, request: Request, service: Service, tenant: Tenant) -> RunRef:
        """Start a failed, cancelled or timed-out run again with the same input, as a new linked run."""
        return _ref(request, await service.replay(run_id, tenant=tenant), "replay")

    return app


_ERRORS: dict[int | str, dict[str, Any]] = {
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


_ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    403: {"description": "The key is not an admin key"},
}


def _ref(request: Request, run: RunRecord, via: Literal["start", "signal", "replay"]) -> RunRef:
    return RunRef(
        run_id=run.id,
        workflow=run.workflow,
        status=run.status,
        via=via,
        # Formatted, not url_for: that walks the routes on every event (measured: a tenth of the API's CPU).
        status_url=f"{str(request.base_url).rstrip('/')}{RUN_PATH.format(run_id=run.id)}",
    )


def _accepted(request: Request, accepted: Accepted) -> EventAccepted:
    return EventAccepted(
        event_id=accepted.event_id, runs=[_ref(request, d.run, d.via) for d in accepted.deliveries]
    )


async def _run_events(request: Request, store: RunStore, run_id: str, tenant: str) -> AsyncIterator[str]:
    last: tuple[Any, ...] | None = None
    last_sent = time.monotonic()
    while not await request.is_disconnected():
        run = await store.get(run_id, tenant=tenant, logs=False)
        if run is None:
            return
        snapshot = (run.status, run.progress, run.stage, run.error)
        if snapshot != last:
            last, last_sent = snapshot, time.monotonic()
            yield f"event: run\ndata: {run.model_dump_json()}\n\n"
        elif time.monotonic() - last_sent > STREAM_KEEPALIVE_SECONDS:
            last_sent = time.monotonic()
            yield ": keep-alive\n\n"
        if run.status.terminal:
            yield f"event: end\ndata: {json.dumps({'status': run.status})}\n\n"
            return
        await asyncio.sleep(STREAM_POLL_SECONDS)


class ErrorJSON(JSONResponse):
    """Refusals echo what the caller sent (names, field paths): rendered ASCII-escaped, so that text JSON
    allows but UTF-8 cannot encode (a lone surrogate) still makes a readable 4xx instead of a 500."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode()


def _add_error_handlers(app: FastAPI) -> None:
    def handler(status: int, headers: dict[str, str] | None = None) -> Callable[..., Awaitable[JSONResponse]]:
        async def handle(request: Request, error: Exception) -> JSONResponse:
            return ErrorJSON(status_code=status, content={"detail": str(error)}, headers=headers)

        return handle

    app.add_exception_handler(NotFoundError, handler(404))
    app.add_exception_handler(ConflictError, handler(409))
    app.add_exception_handler(
        TemporalUnavailableError, handler(503, {"Retry-After": str(RETRY_AFTER_SECONDS)})
    )

    @app.exception_handler(InvalidInputError)
    async def _invalid_input(request: Request, error: InvalidInputError) -> JSONResponse:
        return ErrorJSON(
            status_code=422, content={"detail": [{**e, "loc": ["body", *e["loc"]]} for e in error.errors]}
        )

    @app.exception_handler(InvalidCursorError)
    async def _invalid_cursor(request: Request, error: InvalidCursorError) -> JSONResponse:
        detail = [{"type": "value_error", "loc": ["query", "cursor"], "msg": str(error)}]
        return ErrorJSON(status_code=422, content={"detail": detail})

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = error.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return ErrorJSON(status_code=400, content={"detail": "malformed JSON body"})
        detail = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in errors]
        return ErrorJSON(status_code=422, content={"detail": detail})


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class DocsPolicy:
    """A Content-Security-Policy on the documentation pages: they load only what the API serves. ReDoc
    would otherwise fetch its sponsor's logo from a CDN (it hides it when that fails); machines here
    have no internet, and a docs page should not call out anyway."""

    PAGES = frozenset({"/docs", "/redoc"})
    POLICY = (
        b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        b"img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
    )

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.PAGES:
            await self.app(scope, receive, send)
            return

        async def with_policy(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"content-security-policy", self.POLICY)]
            await send(message)

        await self.app(scope, receive, with_policy)


class _TooLargeError(HTTPException):
    """Raised while the body is read; FastAPI answers it like any HTTPException (its body parser would
    turn any other exception into a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"request body is larger than {limit} bytes")


class BodyLimit:
    """Refuse bodies over ``limit`` bytes with 413, whether announced by Content-Length or streamed.

    Temporal payloads top out at 2 MB; large data belongs in storage, referenced from the event.
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._refuse(send)
            return
        received = 0
        started = False

        async def limited_receive() -> MutableMapping[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLargeError(self.limit)
            return message

        async def tracking_send(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLargeError:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": _TooLargeError(self.limit).detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
