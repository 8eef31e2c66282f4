"""What the command groups share: settings, app storage, the Temporal and API clients, output."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import httpx
import typer
from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, TaskProgressColumn, TextColumn
from rich.table import Column
from temporalio.client import Client as TemporalClient

from longhaul.client import Client, LonghaulError
from longhaul.config import Settings, load_settings
from longhaul.models import RunRecord, RunStatus

if TYPE_CHECKING:
    from longhaul.db import Database

T = TypeVar("T")


def cli_settings(**overrides: Any) -> Settings:
    return load_settings(**{k: v for k, v in overrides.items() if v is not None})


DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="State directory (default: $LONGHAUL_DATA_DIR, else ./.longhaul)."),
]


@asynccontextmanager
async def open_database(settings: Settings, *, prepared: bool = True) -> AsyncIterator[Database]:
    """App storage, opened as every process opens it: its schema upgraded, or checked to be current
    (``migrate_on_start``); ``prepared=False`` for the commands that look at or change the schema."""
    from longhaul.db import Database
    from longhaul.migrations import prepare

    db = Database(settings.app_database_url)
    try:
        if prepared:
            await prepare(db, migrate=settings.migrate_on_start)
        yield db
    finally:
        await db.close()


async def with_temporal(settings: Settings, action: Callable[[TemporalClient], Awaitable[T]]) -> T:
    from longhaul.temporal import connect

    return await action(await connect(settings))


UrlOption = Annotated[
    str | None, typer.Option("--url", help="API URL (default: $LONGHAUL_URL, else the local API).")
]


EXIT_CODES = {RunStatus.COMPLETED: 0, RunStatus.FAILED: 1, RunStatus.CANCELLED: 3, RunStatus.TIMED_OUT: 4}


def client_of(url: str | None) -> Client:
    settings = cli_settings()
    return Client(url or settings.api_url, api_key=settings.client_api_key())


def echo_json(model: BaseModel) -> None:
    typer.echo(model.model_dump_json(indent=2))


@contextmanager
def api_client(url: str | None) -> Iterator[Client]:
    """A client of the API; a refusal or a connection error becomes one line and exit status 1."""
    try:
        with client_of(url) as client:
            yield client
    except (LonghaulError, httpx.HTTPError) as error:
        raise fail(error) from error


def fail(error: Exception) -> typer.Exit:
    """One line per problem on stderr (``error: 422: output: a rejection needs a reason``); with --json,
    the API's answer as it came, on stdout."""
    if isinstance(error, LonghaulError) and len(error.problems) > 1:
        typer.echo("\n  ".join([f"error: {error.status_code}:", *error.problems]), err=True)
    else:
        typer.echo(f"error: {error}", err=True)
    if isinstance(error, LonghaulError) and "--json" in sys.argv[1:]:
        typer.echo(json.dumps({"status_code": error.status_code, "detail": error.detail}, indent=2))
    return typer.Exit(1)


def state_of(run: RunRecord) -> str:
    """What the progress bar shows beside the bar: the status, and the stage while the run is under way
    (or why it waits, while it waits in the run queue)."""
    detail = run.pending_reason or run.stage
    return run.status if run.status.terminal or not detail else f"{run.status} · {detail}"


def print_outcome(run: RunRecord) -> None:
    """Print how the run ended and leave with its exit code."""
    detail = f": {run.error}" if run.error else ""  # why it failed; who cancelled it and why
    typer.echo(f"{run.id} {run.status}{detail}")
    if run.output is not None:
        typer.echo(json.dumps(run.output, indent=2))
    raise typer.Exit(EXIT_CODES[run.status])


def progress_columns() -> tuple[ProgressColumn, ...]:
    """Workflow, bar, percent, stage: in a narrow terminal the stage is cut short (…), never the bar."""
    workflow = Column(max_width=24, no_wrap=True, overflow="ellipsis")
    return (
        TextColumn("{task.description}", table_column=workflow),
        BarColumn(bar_width=24),
        TaskProgressColumn(),
        TextColumn("{task.fields[stage]}", table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis")),
    )


def follow(client: Client, run_id: str) -> RunRecord:
    run = client.runs.get(run_id)
    typer.echo(f"following {run.id} ({run.workflow})", err=True)
    with Progress(*progress_columns(), console=Console(stderr=True), expand=True) as bar:
        task = bar.add_task(run.workflow, total=100, completed=run.progress, stage=state_of(run))
        while not run.status.terminal:
            try:
                for run in client.runs.stream(run_id):
                    bar.update(task, completed=run.progress, stage=state_of(run))
            except httpx.TransportError:  # the API restarted or the connection dropped: follow on
                time.sleep(1)
            run = client.runs.get(run_id)
        bar.update(task, completed=run.progress, stage=state_of(run))
    return run
