"""How refusals are answered: a status and a body naming what was wrong, rendered so that what the caller
sent can always be echoed back."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from longhaul.storage import InvalidCursorError
from starters.service import ConflictError, InvalidInputError, NotFoundError, TemporalUnavailableError
from starters.waitpoints import BadCallbackSignatureError, WaitpointClosedError, WaitpointCompletedError

RETRY_AFTER_SECONDS = 5


class ErrorJSON(JSONResponse):
    """Refusals echo what the caller sent (names, field paths): rendered ASCII-escaped, so that text JSON
    allows but UTF-8 cannot encode (a lone surrogate) still makes a readable 4xx instead of a 500."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode()


def add_error_handlers(app: FastAPI) -> None:
    def handler(status: int, headers: dict[str, str] | None = None) -> Callable[..., Awaitable[JSONResponse]]:
        async def handle(request: Request, error: Exception) -> JSONResponse:
            return ErrorJSON(status_code=status, content={"detail": str(error)}, headers=headers)

        return handle

    app.add_exception_handler(NotFoundError, handler(404))
    app.add_exception_handler(ConflictError, handler(409))
    app.add_exception_handler(WaitpointClosedError, handler(410))
    app.add_exception_handler(BadCallbackSignatureError, handler(403))
    app.add_exception_handler(
        TemporalUnavailableError, handler(503, {"Retry-After": str(RETRY_AFTER_SECONDS)})
    )

    @app.exception_handler(WaitpointCompletedError)
    async def _completed_already(request: Request, error: WaitpointCompletedError) -> JSONResponse:
        first = error.token.model_dump(mode="json", exclude={"callback_url"})
        return ErrorJSON(status_code=409, content={"detail": str(error), "waitpoint": first})

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
