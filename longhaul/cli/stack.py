"""Run longhaul's processes: the dev stack, a worker, the API, the dispatcher; check them."""

from __future__ import annotations

import asyncio
from typing import Annotated

import httpx
import typer

from longhaul.cli.common import (
    DataDir,
    cli_settings,
)
from longhaul.config import Settings
from longhaul.processes import stop_with_parent as stop_with_parent_process

app = typer.Typer()  # its commands are the root's
Host = Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")]
Port = Annotated[int | None, typer.Option(help="Port (default 8000).")]


@app.command()
def dev(
    api_port: Annotated[int | None, typer.Option("--api-port", help="HTTP API port (default 8000).")] = None,
    temporal_port: Annotated[
        int | None, typer.Option("--temporal-port", help="Temporal gRPC port (default 7233).")
    ] = None,
    ui_port: Annotated[int | None, typer.Option("--ui-port", help="Web UI port (default 8233).")] = None,
    data_dir: DataDir = None,
    stop_with_parent: Annotated[
        bool,
        typer.Option(
            "--stop-with-parent",
            help="Stop (as on Ctrl-C) when the process that started this one exits: `make dev` passes "
            "it, as make does not pass a SIGINT or SIGTERM on to its command.",
        ),
    ] = False,
    reload: Annotated[
        bool,
        typer.Option(
            "--reload/--no-reload",
            help="Restart the worker (and the API when the catalog changed) when the application's source "
            "changes; an import or syntax error is printed and the stack keeps serving.",
        ),
    ] = True,
) -> None:
    """Run the whole stack locally: Temporal dev server + Web UI, worker and HTTP API.

    Uses the server TEMPORAL_ADDRESS points at, if set, instead of starting one.
    """
    from longhaul.server.dev import run_dev

    if stop_with_parent and not stop_with_parent_process():
        raise typer.Exit(0)  # it went before we could watch it

    settings = cli_settings(
        api_port=api_port,
        dev_temporal_port=temporal_port,
        dev_ui_port=ui_port,
        data_dir=data_dir,
    )
    raise typer.Exit(asyncio.run(run_dev(settings, reload=reload)))


@app.command()
def worker(data_dir: DataDir = None) -> None:
    """Run a worker (production: run several). Stops gracefully on SIGTERM."""
    from longhaul.server.worker import run_worker

    asyncio.run(run_worker(cli_settings(data_dir=data_dir)))


@app.command()
def serve(host: Host = None, port: Port = None, data_dir: DataDir = None) -> None:
    """Run API, dispatcher and worker in one process (one box): the fastest way to run on one
    machine; a crash stops all three, and Temporal retries their work. Scale out with `longhaul api`,
    `longhaul worker` and `longhaul dispatcher` instead (docs/architecture.md, "One box")."""
    _serve(cli_settings(api_host=host, api_port=port, data_dir=data_dir, api_worker=True))


@app.command()
def api(host: Host = None, port: Port = None, data_dir: DataDir = None) -> None:
    """Run the HTTP API."""
    _serve(cli_settings(api_host=host, api_port=port, data_dir=data_dir))


def _serve(settings: Settings) -> None:
    import uvicorn

    from longhaul.api import create_app
    from longhaul.processes import settle_heap

    app = create_app(settings)
    settle_heap()
    uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_config=None, access_log=False)


@app.command()
def dispatcher(data_dir: DataDir = None) -> None:
    """Run the run queue's dispatcher on its own (with `LONGHAUL_API_DISPATCHER=false` for the APIs).
    On PostgreSQL several share the queue; on SQLite one dispatches and the others stand by."""
    from longhaul.processes import settle_heap
    from longhaul.server.dispatcher import run_dispatcher

    settle_heap()
    asyncio.run(run_dispatcher(cli_settings(data_dir=data_dir)))


@app.command()
def status(url: Annotated[str | None, typer.Option(help="API URL (default from settings).")] = None) -> None:
    """Check each part from this machine: Temporal and app storage directly, then the API's health.

    Exit status 0 only if all are healthy; each line names what failed, so an operator knows where to look.
    """
    settings = cli_settings()
    checks = asyncio.run(_status_checks(settings, url or settings.api_url))
    for name, problem in checks.items():
        typer.echo(f"{name:<12} {problem or 'ok'}")
    raise typer.Exit(1 if any(checks.values()) else 0)


async def _status_checks(settings: Settings, api_url: str) -> dict[str, str | None]:
    from longhaul.db import Database
    from longhaul.temporal import connect

    checks: dict[str, str | None] = {}
    try:
        client = await connect(settings)
        await client.service_client.check_health()
        checks["temporal"] = None
    except Exception as error:
        checks["temporal"] = f"unreachable at {settings.temporal_address}: {error}"
    db = Database(settings.app_database_url)
    try:
        await db.ping()
        checks["app storage"] = None
    except Exception as error:
        checks["app storage"] = f"unavailable: {error}"
    finally:
        await db.close()
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(f"{api_url}/health")
        checks["api"] = None if response.status_code == 200 else f"unhealthy at {api_url}: {response.text}"
    except httpx.HTTPError as error:
        checks["api"] = f"unreachable at {api_url}: {error!r}"
    return checks
