"""How refusals are answered: a status and a body naming what was wrong, rendered so that what the caller
sent can always be echoed back."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from longhaul.api.ui.render import error_page
from longhaul.queue import IntakeRefusedError
from longhaul.server.envelopes import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    TemporalUnavailableError,
)
from longhaul.server.waitpoints import (
    BadCallbackSignatureError,
    WaitpointClosedError,
    WaitpointCompletedError,
)
from longhaul.storage import InvalidCursorError

RETRY_AFTER_SECONDS = 5


class ErrorJSON(JSONResponse):
    """Refusals echo what the caller sent (names, field paths): rendered ASCII-escaped, so that text JSON
    allows but UTF-8 cannot encode (a lone surrogate) still makes a readable 4xx instead of a 500."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode()


def _on_dashboard(request: Request) -> bool:
    return request.url.path.startswith("/ui/")


def answer(
    request: Request, status: int, content: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    """The refusal as JSON, or as a page for the dashboard's pages (same status, same message)."""
    if _on_dashboard(request):
        return error_page(request, status, content["detail"])
    return ErrorJSON(status_code=status, content=content, headers=headers)


async def _over_intake(request: Request, error: Exception) -> Response:
    """429 naming the rate limit's scope, with when it has room again."""
    assert isinstance(error, IntakeRefusedError)
    headers = {"Retry-After": str(error.retry_after)}
    return answer(request, 429, {"detail": str(error), "scope": error.scope}, headers)


def add_error_handlers(app: FastAPI) -> None:
    def handler(status: int, headers: dict[str, str] | None = None) -> Callable[..., Awaitable[Response]]:
        async def handle(request: Request, error: Exception) -> Response:
            return answer(request, status, {"detail": str(error)}, headers)

        return handle

    app.add_exception_handler(NotFoundError, handler(404))
    app.add_exception_handler(ConflictError, handler(409))
    app.add_exception_handler(WaitpointClosedError, handler(410))
    app.add_exception_handler(BadCallbackSignatureError, handler(403))
    app.add_exception_handler(IntakeRefusedError, _over_intake)
    app.add_exception_handler(
        TemporalUnavailableError, handler(503, {"Retry-After": str(RETRY_AFTER_SECONDS)})
    )

    @app.exception_handler(WaitpointCompletedError)
    async def _completed_already(request: Request, error: WaitpointCompletedError) -> Response:
        first = error.token.model_dump(mode="json", exclude={"callback_url"})
        return answer(request, 409, {"detail": str(error), "waitpoint": first})

    @app.exception_handler(InvalidInputError)
    async def _invalid_input(request: Request, error: InvalidInputError) -> Response:
        return answer(request, 422, {"detail": [{**e, "loc": ["body", *e["loc"]]} for e in error.errors]})

    @app.exception_handler(InvalidCursorError)
    async def _invalid_cursor(request: Request, error: InvalidCursorError) -> Response:
        detail = [{"type": "value_error", "loc": ["query", "cursor"], "msg": str(error)}]
        return answer(request, 422, {"detail": detail})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> Response:
        if _on_dashboard(request) and error.status_code >= 400:  # a sign-in redirect stays one
            return error_page(request, error.status_code, error.detail)
        return await http_exception_handler(request, error)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, error: RequestValidationError) -> Response:
        errors = error.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return answer(request, 400, {"detail": "malformed JSON body"})
        detail = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in errors]
        return answer(request, 422, {"detail": detail})
