"""The provider's HTTP app: its lifespan (the state file, resuming what was due) and its routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from longhaul.db import Database
from providers.payments import routes
from providers.payments.state import SCHEMA, Provider


def create_provider(*, secret: str, webhook_url: str | None, database: Path) -> FastAPI:
    """The provider's HTTP app, keeping its state in the SQLite file ``database``."""
    provider = Provider(
        secret=secret, webhook_url=webhook_url, db=Database(f"sqlite+aiosqlite:///{database}")
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with provider.db.engine.begin() as conn:
            await conn.run_sync(SCHEMA.create_all)
        await provider.resume()
        yield
        for task in provider.background:
            task.cancel()
        if provider.http is not None:
            await provider.http.aclose()
        await provider.db.close()

    app = FastAPIOffline(title="longhaul local payment provider", lifespan=lifespan)  # docs served offline
    app.state.provider = provider
    for router in (routes.charges, routes.admin, routes.health):
        app.include_router(router)
    return app
