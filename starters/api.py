"""The HTTP API: send events, read runs. Small typed endpoints; the pydantic schema is the validation."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from longhaul.config import Settings, load_settings
from longhaul.models import RunRecord
from longhaul.storage import RunStore
from longhaul.temporal import connect, ensure_search_attributes
from starters.ingest import EventEnvelope, Ingestor, TemporalUnavailableError, UnknownEventError

log = logging.getLogger("longhaul.api")

RETRY_AFTER_SECONDS = 5


class RunRef(BaseModel):
    run_id: str
    workflow: str
    status: str
    status_url: str


class EventAccepted(BaseModel):
    event_id: str
    runs: list[RunRef]


class Health(BaseModel):
    status: str
    database: str
    temporal: str


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API application. The Temporal client and the store are made in the lifespan, i.e. in the
    serving process on its own event loop (clients do not survive a fork)."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = RunStore(settings.app_database_url)
        await store.create_schema()
        client = await connect(settings, lazy=True)
        try:
            await ensure_search_attributes(client)
        except Exception as error:  # Temporal may be down now; the worker registers them too
            log.warning("could not check search attributes yet: %s", error)
        app.state.store = store
        app.state.ingestor = Ingestor(client, store, settings)
        app.state.client = client
        try:
            yield
        finally:
            await store.close()

    app = FastAPI(
        title="longhaul",
        summary="Durable workflows for long-running processes, on Temporal.",
        version="0.1.0",
        lifespan=lifespan,
    )

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = error.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse(status_code=400, content={"detail": "malformed JSON body"})
        return JSONResponse(status_code=422, content={"detail": _jsonable_errors(errors)})

    @app.get("/health", response_model=Health, responses={503: {"model": Health}})
    async def health(request: Request) -> Any:
        """Liveness of the API and its two dependencies: app storage and Temporal."""
        database = temporal = "ok"
        try:
            await request.app.state.store.ping()
        except Exception as error:
            database = f"error: {error}"
        try:
            await request.app.state.client.service_client.check_health()
        except Exception as error:
            temporal = f"error: {error}"
        ok = database == temporal == "ok"
        body = Health(status="ok" if ok else "degraded", database=database, temporal=temporal)
        return body if ok else JSONResponse(status_code=503, content=body.model_dump())

    @app.post("/api/events/{name}", status_code=202, response_model=EventAccepted)
    async def send_event(name: str, envelope: EventEnvelope, request: Request) -> EventAccepted:
        """Send an event: every workflow subscribed to it starts once per event id."""
        ingestor: Ingestor = request.app.state.ingestor
        try:
            accepted = await ingestor.send(name, envelope)
        except UnknownEventError as error:
            raise HTTPException(status_code=404, detail=str(error)) from error
        except ValidationError as error:
            detail = [{**e, "loc": ["body", "payload", *e["loc"]]} for e in error.errors()]
            raise RequestValidationError(detail) from error
        except TemporalUnavailableError as error:
            raise HTTPException(
                status_code=503, detail=str(error), headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
            ) from error
        return EventAccepted(
            event_id=accepted.event_id,
            runs=[
                RunRef(
                    run_id=run.id,
                    workflow=run.workflow,
                    status=run.status,
                    status_url=str(request.url_for("get_run", run_id=run.id)),
                )
                for run in accepted.runs
            ],
        )

    @app.get("/api/runs/{run_id}", response_model=RunRecord, name="get_run")
    async def get_run(run_id: str, store: Annotated[RunStore, Depends(_store)]) -> RunRecord:
        """A run's durable record: status, progress, stage, output, error, timestamps."""
        run = await store.get(run_id)
        if run is None:
            raise HTTPException(status_code=404, detail=f"no run '{run_id}'")
        return run

    return app


def _store(request: Request) -> RunStore:
    store: RunStore = request.app.state.store
    return store


def _jsonable_errors(errors: Any) -> list[dict[str, Any]]:
    """Validation errors without the raw input objects (which may not be JSON-serializable)."""
    return [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in errors]
