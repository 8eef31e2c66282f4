"""Helpers for tests that drive the HTTP API in process (ASGI), with its lifespan."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI


@asynccontextmanager
async def api_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http,
    ):
        yield http


async def wait_for_status(http: httpx.AsyncClient, run_id: str, *statuses: str) -> dict[str, Any]:
    """Poll the run until its status is one of ``statuses`` (for at most 30 s)."""
    body: dict[str, Any] = {}
    for _ in range(600):
        body = (await http.get(f"/api/runs/{run_id}")).json()
        if body["status"] in statuses:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} never reached {statuses}: {body}")


def sse_events(text: str) -> list[tuple[str, Any]]:
    """(event, parsed data) pairs of a server-sent events body."""
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if "data" in fields:
            events.append((fields.get("event", "message"), json.loads(fields["data"])))
    return events
