"""ASGI middleware of the API: security headers on every answer (framing, sniffing, referrers; a content
policy for the documentation pages), a limit on body size, and CORS per browser-facing surface."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import HTTPException
from starlette import types
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class SecurityHeaders:
    """Headers every answer carries: no site may frame a page of the API (``frame-ancestors 'none'``
    and ``X-Frame-Options: DENY``: a framed dashboard could be clicked through by another site), no
    sniffing of content types, referrers kept to this origin.

    The realtime example page may be framed by the origins the deployment names (``frame_origins``: a
    product embedding its run view). The documentation pages also load only what the API serves: ReDoc
    would otherwise fetch its sponsor's logo from a CDN (it hides it when that fails); machines here have
    no internet, and a docs page should not call out anyway."""

    DOCS = frozenset({"/docs", "/redoc"})
    DOCS_POLICY = (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    )
    FRAMEABLE = frozenset({"/examples/realtime.html"})

    def __init__(
        self, app: Callable[[Scope, Receive, Send], Awaitable[None]], frame_origins: list[str]
    ) -> None:
        self.app = app
        self.framers = " ".join(frame_origins)

    def headers(self, path: str) -> list[tuple[bytes, bytes]]:
        framers = self.framers if path in self.FRAMEABLE and self.framers else None
        ancestors = framers or "'none'"
        policy = (self.DOCS_POLICY if path in self.DOCS else "") + f"frame-ancestors {ancestors}"
        headers = [
            (b"content-security-policy", policy.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
        ]
        if framers is None:  # X-Frame-Options cannot name origins: where some may frame, CSP says it
            headers.append((b"x-frame-options", b"DENY"))
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = self.headers(scope["path"])

        async def with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *added]
            await send(message)

        await self.app(scope, receive, with_headers)


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


class PathCORS:
    """CORS for the paths ``pattern`` matches, and no others: each surface a browser calls from another
    origin (the Temporal UI's codec calls, a product's pages streaming runs) names its own origins,
    methods and headers."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        pattern: str,
        origins: list[str],
        methods: list[str],
        headers: list[str],
        credentials: bool = False,
    ) -> None:
        self.app = app
        self.pattern = re.compile(pattern)
        self.cors = CORSMiddleware(
            app, allow_origins=origins, allow_methods=methods, allow_headers=headers,
            allow_credentials=credentials,
        )  # fmt: skip

    async def __call__(self, scope: types.Scope, receive: types.Receive, send: types.Send) -> None:
        if scope["type"] == "http" and self.pattern.fullmatch(scope["path"]):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
