"""Helpers for tests that drive the HTTP API in process (ASGI), with its lifespan."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from longhaul.config import Settings
from longhaul.db import Database
from longhaul.keys import KeyStore, Role
from tests.processes import free_port


@asynccontextmanager
async def api_client(
    app: FastAPI, tenant: str = "default", role: Role = Role.TENANT
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan, and a client that sends a fresh API key of ``tenant`` (and ``role``)."""
    async with app.router.lifespan_context(app):
        _, key = await app.state.keys.create(tenant, "tests", role)
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers) as http:
            yield http


def key_id(http: httpx.AsyncClient) -> str:
    """The id of the API key ``http`` sends (``lh_<id>_<secret>``): what records name as who acted."""
    return http.headers["Authorization"].removeprefix("Bearer ").split("_")[1]


async def other_tenant(settings: Settings, tenant: str = "other-tenant") -> dict[str, str]:
    """Headers carrying a fresh key of another tenant (made in app storage, as ``longhaul keys`` does)."""
    db = Database(settings.app_database_url)
    try:
        _, key = await KeyStore(db).create(tenant, "tests")
    finally:
        await db.close()
    return {"Authorization": f"Bearer {key}"}


async def wait_for_status(
    http: httpx.AsyncClient, run_id: str, *statuses: str, limit: float = 30
) -> dict[str, Any]:
    """Poll the run until its status is one of ``statuses`` (for at most ``limit`` seconds)."""
    body: dict[str, Any] = {}
    for _ in range(int(limit * 20)):
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


@asynccontextmanager
async def serving(app: FastAPI, port: int | None = None) -> AsyncIterator[str]:
    """The app listening on a local port (a free one unless given; uvicorn, in this event loop), for what
    must reach it over the network: a browser, a server-sent events stream read as it comes, another
    process."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the API did not start"
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def unreachable_client() -> Client:
    """A Temporal client of an address nothing listens on (connected lazily: every call fails at once, as
    Temporal being down does)."""
    return await Client.connect(f"127.0.0.1:{free_port()}", lazy=True, data_converter=pydantic_data_converter)
