"""The ``longhaul`` command.

Process exit is made deterministic here: the Temporal SDK can crash during interpreter finalization
(sdk-python #300: Rust threads vs. a finalizing runtime), turning a successful command into exit 139.
So :func:`main` flushes and leaves with ``os._exit`` once the command has shut everything down.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import httpx
import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table
from temporalio.client import Client as TemporalClient

from longhaul.config import Settings, load_settings
from longhaul.keys import KeyStore, Role
from longhaul.logs import configure_logging
from longhaul.models import RunRecord, RunStatus
from starters.client import Client, LonghaulError

if TYPE_CHECKING:
    from longhaul.db import Database

T = TypeVar("T")

app = typer.Typer(
    name="longhaul",
    help="Durable workflows for long-running processes, on Temporal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
events_app = typer.Typer(help="Send events.", no_args_is_help=True)
runs_app = typer.Typer(help="Read and act on runs.", no_args_is_help=True)
videos_app = typer.Typer(help="The video pipeline: sample videos, uploads.", no_args_is_help=True)
orders_app = typer.Typer(help="The order pipeline.", no_args_is_help=True)
schedules_app = typer.Typer(help="Schedules declared in code.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (one tenant each).", no_args_is_help=True)
db_app = typer.Typer(help="The app database's schema (migrations).", no_args_is_help=True)
webhooks_app = typer.Typer(help="Webhooks received: dead letters (admin keys).", no_args_is_help=True)
app.add_typer(events_app, name="events")
app.add_typer(runs_app, name="runs")
app.add_typer(videos_app, name="videos")
app.add_typer(orders_app, name="orders")
app.add_typer(schedules_app, name="schedules")
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.add_typer(webhooks_app, name="webhooks")


def _settings(**overrides: Any) -> Settings:
    return load_settings(**{k: v for k, v in overrides.items() if v is not None})


DataDir = Annotated[Path | None, typer.Option("--data-dir", help="State directory [env: LONGHAUL_DATA_DIR].")]


@app.command()
def dev(
    api_port: Annotated[int | None, typer.Option("--api-port", help="HTTP API port (default 8000).")] = None,
    temporal_port: Annotated[
        int | None, typer.Option("--temporal-port", help="Temporal gRPC port (default 7233).")
    ] = None,
    ui_port: Annotated[int | None, typer.Option("--ui-port", help="Web UI port (default 8233).")] = None,
    payments_port: Annotated[
        int | None, typer.Option("--payments-port", help="Local payment provider port (default 8010).")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Run the whole stack locally: Temporal dev server + Web UI, worker and HTTP API.

    Uses the server TEMPORAL_ADDRESS points at, if set, instead of starting one.
    """
    from starters.dev import run_dev

    settings = _settings(
        api_port=api_port,
        dev_temporal_port=temporal_port,
        dev_ui_port=ui_port,
        dev_payments_port=payments_port,
        data_dir=data_dir,
    )
    raise typer.Exit(asyncio.run(run_dev(settings)))


@app.command()
def worker(data_dir: DataDir = None) -> None:
    """Run a worker (production: run several). Stops gracefully on SIGTERM."""
    from starters.worker import run_worker

    asyncio.run(run_worker(_settings(data_dir=data_dir)))


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Run the HTTP API."""
    import uvicorn

    from starters.api import create_app

    settings = _settings(api_host=host, api_port=port, data_dir=data_dir)
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        access_log=False,
    )


@app.command()
def payments(
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default 8010).")] = None,
    webhook_url: Annotated[
        str | None,
        typer.Option(help="Where confirmations are sent (default: the API's /api/webhooks/payments)."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Run the local payment provider (for development and tests). Its charges, idempotency keys and
    ledger are kept in <data dir>/payments.db, so a restart forgets nothing."""
    import uvicorn

    from providers.payments import create_provider

    settings = _settings(data_dir=data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_provider(
        secret=settings.payments_webhook_secret,
        webhook_url=webhook_url or f"{settings.api_url}/api/webhooks/payments",
        database=(settings.data_dir / "payments.db").resolve(),
    )
    uvicorn.run(app, host=host, port=port or settings.dev_payments_port, log_config=None, access_log=False)


@orders_app.command("seed")
def orders_seed(
    tenant: Annotated[str, typer.Option(help="The tenant whose catalog gets them.")] = "default",
) -> None:
    """Add the demo products (sku-book, sku-mug, sku-tee) to a tenant, if missing. ``longhaul dev`` seeds
    the default tenant only: a tenant of your own needs this before its orders find any stock."""
    added = asyncio.run(_seed(_settings(), tenant))
    typer.echo(f"{added} demo products added for tenant {tenant}")


async def _seed(settings: Settings, tenant: str) -> int:
    from longhaul.order_store import seed_demo_products

    async with _database(settings) as db:
        return await seed_demo_products(db, tenant)


@asynccontextmanager
async def _database(settings: Settings, *, prepared: bool = True) -> AsyncIterator[Database]:
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


async def _with_client(settings: Settings, action: Callable[[TemporalClient], Awaitable[T]]) -> T:
    from longhaul.temporal import connect

    return await action(await connect(settings))


@schedules_app.command("sync")
def schedules_sync(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the changes without making them.")
    ] = False,
) -> None:
    """Make the server's schedules match the ones declared in code (idempotent)."""
    from starters.schedules import sync
    from workflows.schedules import declared

    settings = _settings()
    changes = asyncio.run(
        _with_client(settings, lambda c: sync(c, declared(settings), settings, dry_run=dry_run))
    )
    for change in changes:
        typer.echo(("would " if dry_run and change.action != "unchanged" else "") + str(change))


@schedules_app.command("list")
def schedules_list() -> None:
    """longhaul's schedules with their next run times."""
    from starters.schedules import describe_all

    for info in asyncio.run(_with_client(_settings(), describe_all)):
        state = "paused" if info.paused else "active"
        upcoming = ", ".join(t.strftime("%Y-%m-%d %H:%M:%S") for t in info.next_runs) or "-"
        typer.echo(f"{info.id}  {info.workflow}  {info.spec}  {state}  next: {upcoming}")


@schedules_app.command("pause")
def schedules_pause(schedule: str, note: Annotated[str, typer.Option()] = "paused from the CLI") -> None:
    """Pause a schedule (until unpaused, or until its declaration changes and sync replaces it)."""
    from starters.schedules import pause

    asyncio.run(_with_client(_settings(), lambda c: pause(c, schedule, note)))
    typer.echo(f"paused {schedule}")


@schedules_app.command("unpause")
def schedules_unpause(schedule: str, note: Annotated[str, typer.Option()] = "unpaused from the CLI") -> None:
    from starters.schedules import unpause

    asyncio.run(_with_client(_settings(), lambda c: unpause(c, schedule, note)))
    typer.echo(f"unpaused {schedule}")


@schedules_app.command("trigger")
def schedules_trigger(schedule: str) -> None:
    """Run a schedule's workflow now (its overlap policy still applies)."""
    from starters.schedules import trigger

    asyncio.run(_with_client(_settings(), lambda c: trigger(c, schedule)))
    typer.echo(f"triggered {schedule}")


@schedules_app.command("backfill")
def schedules_backfill(
    schedule: str,
    start: Annotated[datetime, typer.Option("--from", help="ISO time, UTC unless given.")],
    end: Annotated[datetime, typer.Option("--to", help="ISO time, UTC unless given.")],
) -> None:
    """Run the actions the schedule would have taken between --from and --to."""
    from starters.schedules import backfill

    utc = [t if t.tzinfo else t.replace(tzinfo=UTC) for t in (start, end)]
    asyncio.run(_with_client(_settings(), lambda c: backfill(c, schedule, utc[0], utc[1])))
    typer.echo(f"backfilled {schedule} from {utc[0].isoformat()} to {utc[1].isoformat()}")


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="The tenant the key acts for.")],
    name: Annotated[str, typer.Option(help="What the key is for.")] = "",
    role: Annotated[
        Role, typer.Option(help="admin: also acts on what belongs to no tenant (global schedules).")
    ] = Role.TENANT,
) -> None:
    """Create an API key. It is printed once and stored only as a hash: keep it."""
    key, secret = asyncio.run(_keys(lambda keys: keys.create(tenant, name, role)))
    typer.echo(secret)
    typer.echo(
        f"{key.role} key {key.id} for tenant {key.tenant} "
        f"(shown once; revoke with: longhaul keys revoke {key.id})",
        err=True,
    )


@keys_app.command("list")
def keys_list(tenant: Annotated[str | None, typer.Option()] = None) -> None:
    """List keys (ids, tenants, names; never the keys themselves)."""
    for key in asyncio.run(_keys(lambda keys: keys.list(tenant))):
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        typer.echo(f"{key.id}  {key.tenant}  {key.role}  {state}  {key.name}")


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key: requests with it are refused from now on."""
    if not asyncio.run(_keys(lambda keys: keys.revoke(key_id))):
        typer.echo(f"no active key {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


async def _keys(action: Callable[[KeyStore], Awaitable[T]]) -> T:
    async with _database(_settings()) as db:
        return await action(KeyStore(db))


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    sql: Annotated[
        bool, typer.Option("--sql", help="Print the SQL instead of running it (for a DBA to review).")
    ] = False,
) -> None:
    """Bring the app database's schema to a revision (default: the newest). Safe to run again, and from
    several processes at once: they upgrade one after the other."""
    from alembic import command

    from longhaul import migrations

    if sql:
        command.upgrade(migrations.alembic_config(), revision, sql=True)
        return
    before, after = asyncio.run(_upgrade_schema(revision))
    typer.echo(
        f"app database at revision {after}" + (f" (was {before or 'empty'})" if before != after else "")
    )


async def _upgrade_schema(revision: str) -> tuple[str | None, str | None]:
    from longhaul.migrations import upgrade

    async with _database(_settings(), prepared=False) as db:
        return await upgrade(db, revision)


@db_app.command("current")
def db_current() -> None:
    """The revision the app database is at and the one this code needs; exit 1 if they differ."""
    from longhaul.migrations import current, head

    async def read() -> str | None:
        async with _database(_settings(), prepared=False) as db:
            return await current(db)

    at, expected = asyncio.run(read()), head()
    typer.echo(f"app database at {at or 'no schema'}; this code needs {expected}")
    if at != expected:
        raise typer.Exit(1)


@db_app.command("revision")
def db_revision(
    message: Annotated[str, typer.Option("--message", "-m", help="What the change does.")],
) -> None:
    """Write a new migration for what the models changed (autogenerated; read it before committing)."""
    import tempfile

    from longhaul.migrations import new_revision

    with tempfile.TemporaryDirectory() as scratch:
        path = asyncio.run(new_revision(message, Path(scratch) / "scratch.db"))
    typer.echo(f"wrote {path}")


@app.command()
def status(url: Annotated[str | None, typer.Option(help="API URL (default from settings).")] = None) -> None:
    """Check each part from this machine: Temporal and app storage directly, then the API's health.

    Exit status 0 only if all are healthy; each line names what failed, so an operator knows where to look.
    """
    settings = _settings()
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


UrlOption = Annotated[str | None, typer.Option("--url", help="API URL [env: LONGHAUL_URL].")]

# How `runs watch` exits: scripts can branch on the outcome.
EXIT_CODES = {RunStatus.COMPLETED: 0, RunStatus.FAILED: 1, RunStatus.CANCELLED: 3, RunStatus.TIMED_OUT: 4}


def _client(url: str | None) -> Client:
    settings = _settings()
    return Client(url or settings.api_url, api_key=settings.client_api_key())


def _echo_json(model: BaseModel) -> None:
    typer.echo(model.model_dump_json(indent=2))


@contextmanager
def _api(url: str | None) -> Iterator[Client]:
    """A client of the API; a refusal or a connection error becomes one line and exit status 1."""
    try:
        with _client(url) as client:
            yield client
    except (LonghaulError, httpx.HTTPError) as error:
        raise _fail(error) from error


def _fail(error: Exception) -> typer.Exit:
    typer.echo(f"error: {error}", err=True)
    return typer.Exit(1)


@events_app.command("send")
def events_send(
    name: Annotated[str, typer.Argument(help="Event name, e.g. hello.")],
    data: Annotated[str, typer.Option("--data", help="Payload JSON, or @file.json.")] = "{}",
    event_id: Annotated[str | None, typer.Option("--id", help="Event id / idempotency key.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Tag for the runs (repeatable).")] = None,
    url: UrlOption = None,
) -> None:
    """Send an event and print the runs it started (or signalled)."""
    try:
        raw = Path(data[1:]).read_text() if data.startswith("@") else data
        payload = json.loads(raw)
    except (OSError, json.JSONDecodeError) as error:
        typer.echo(f"--data: {error}", err=True)
        raise typer.Exit(2) from error
    with _api(url) as client:
        _echo_json(client.send_event(name, payload, id=event_id, tags=tag))


@runs_app.command("list")
def runs_list(
    status: Annotated[RunStatus | None, typer.Option(help="Only runs with this status.")] = None,
    workflow: Annotated[str | None, typer.Option(help="Only runs of this workflow.")] = None,
    event: Annotated[str | None, typer.Option(help="Only runs started by this event.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only runs with this tag.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 20,
    cursor: Annotated[str | None, typer.Option(help="Page cursor from a previous listing.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the page as JSON.")] = False,
    url: UrlOption = None,
) -> None:
    """List runs, newest first."""
    with _api(url) as client:
        page = client.runs.list(
            status=status, workflow=workflow, event=event, tag=tag, limit=limit, cursor=cursor
        )
    if as_json:
        _echo_json(page)
        return
    table = Table()
    for column in ("run", "workflow", "event", "status", "progress", "stage", "created"):
        table.add_column(column, no_wrap=column in ("run", "status", "progress", "created"), overflow="fold")
    for run in page.runs:
        created = run.created_at.strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(
            run.id, run.workflow, run.event_id, run.status, f"{run.progress}%", run.stage or "", created
        )
    Console(width=None if sys.stdout.isatty() else 200).print(table)  # piped: don't squeeze columns
    if page.next_cursor:
        typer.echo(f"more: --cursor {page.next_cursor}")


@runs_app.command("show")
def runs_show(run_id: str, url: UrlOption = None) -> None:
    """Print a run's record (status, progress, logs, output, error) as JSON."""
    with _api(url) as client:
        _echo_json(client.runs.get(run_id))


@runs_app.command("watch")
def runs_watch(run_id: str, url: UrlOption = None) -> None:
    """Follow a run live with a progress bar; exit 0 if it completes, 1 failed, 3 cancelled, 4 timed out."""
    with _api(url) as client:
        run = _watch(client, run_id)
    _print_outcome(run)


def _state(run: RunRecord) -> str:
    """What the progress bar shows beside the bar: the status, and the stage while the run is under way."""
    return run.status if run.status.terminal or not run.stage else f"{run.status} · {run.stage}"


def _print_outcome(run: RunRecord) -> None:
    """Print how the run ended and leave with its exit code."""
    detail = f": {run.error}" if run.error and run.status != RunStatus.CANCELLED else ""
    typer.echo(f"{run.id} {run.status}{detail}")
    if run.output is not None:
        typer.echo(json.dumps(run.output, indent=2))
    raise typer.Exit(EXIT_CODES[run.status])


def _watch(client: Client, run_id: str) -> RunRecord:
    run = client.runs.get(run_id)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[stage]}"),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(f"{run.workflow} {run.id}", total=100, completed=run.progress, stage=_state(run))
        while not run.status.terminal:
            try:
                for run in client.runs.stream(run_id):
                    bar.update(task, completed=run.progress, stage=_state(run))
            except httpx.TransportError:  # the API restarted or the connection dropped: follow on
                time.sleep(1)
            run = client.runs.get(run_id)
        bar.update(task, completed=run.progress, stage=_state(run))
    return run


@videos_app.command("sample")
def videos_sample(
    out: Annotated[Path, typer.Argument(help="Where to write the MP4.")],
    seconds: Annotated[float, typer.Option(min=1, max=3600)] = 20,
    height: Annotated[int, typer.Option(help="1080, 720, 480 …", min=144, max=2160)] = 1080,
) -> None:
    """Make a sample video (test pattern and tone, a black and silent second in the middle)."""
    from activities.ffmpeg import make_sample

    width = height * 16 // 9 // 2 * 2
    middle = seconds / 2
    make_sample(
        out, width=width, height=height, seconds=seconds, quiet=(middle, middle + min(1, seconds / 4))
    )
    typer.echo(f"{out} ({width}x{height}, {seconds:g}s)")


@videos_app.command("upload")
def videos_upload(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The video file.")],
    video_id: Annotated[str | None, typer.Option(help="Default: the file name without extension.")] = None,
    user_id: Annotated[str, typer.Option()] = "cli",
    watch: Annotated[
        bool, typer.Option("--watch/--no-watch", help="Follow the run with a progress bar.")
    ] = True,
    url: UrlOption = None,
) -> None:
    """Copy a video into the upload dir and send ``video.uploaded`` (for a stack on this machine)."""
    settings = _settings()
    video_id = video_id or re.sub(r"[^A-Za-z0-9_-]", "-", file.stem)[:100]
    name = f"{video_id}{file.suffix.lower()}"
    settings.upload_root.mkdir(parents=True, exist_ok=True)
    partial = settings.upload_root / f".{name}.part"
    shutil.copyfile(file, partial)
    partial.replace(settings.upload_root / name)
    payload = {"video_id": video_id, "user_id": user_id, "file_path": name}
    with _api(url) as client:
        accepted = client.send_event("video.uploaded", payload)
        typer.echo(accepted.model_dump_json(indent=2))
        if not watch:
            return
        run = _watch(client, accepted.runs[0].run_id)
    _print_outcome(run)


@runs_app.command("cancel")
def runs_cancel(run_id: str, url: UrlOption = None) -> None:
    """Ask a run to stop (its workflow compensates and records ``cancelled``)."""
    with _api(url) as client:
        _echo_json(client.runs.cancel(run_id))


@runs_app.command("replay")
def runs_replay(run_id: str, url: UrlOption = None) -> None:
    """Start a failed or cancelled run again with the same input, as a new run linked to it."""
    with _api(url) as client:
        _echo_json(client.runs.replay(run_id))


@webhooks_app.command("dead-letters")
def webhooks_dead_letters(
    redelivered: Annotated[
        bool, typer.Option("--redelivered", help="Those re-delivered since, instead of those still dead.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print them as JSON.")] = False,
    url: UrlOption = None,
) -> None:
    """Signed webhooks that could not be processed (acknowledged to the provider, kept here)."""
    with _api(url) as client:
        page = client.dead_letters.list(status="redelivered" if redelivered else "dead")
    if as_json:
        _echo_json(page)
        return
    table = Table()
    for column in ("id", "source", "event", "attempts", "updated", "reason"):
        table.add_column(column, no_wrap=column in ("id", "attempts", "updated"), overflow="fold")
    for letter in page.dead_letters:
        updated = letter.updated_at.strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(
            letter.id, letter.source, letter.event_id or "-", str(letter.attempts), updated, letter.reason
        )
    Console(width=None if sys.stdout.isatty() else 200).print(table)


@webhooks_app.command("redeliver")
def webhooks_redeliver(letter_id: str, url: UrlOption = None) -> None:
    """Process a dead letter's webhook again with the code running now; exit 1 if it still fails."""
    with _api(url) as client:
        outcome = client.dead_letters.redeliver(letter_id)
    _echo_json(outcome)
    if not outcome.received:
        raise typer.Exit(1)


def main() -> None:
    """Entry point of the ``longhaul`` script: run the command, then exit without interpreter teardown."""
    status_code = 0
    try:
        settings = load_settings()
        configure_logging(settings.log_level, settings.log_format)
        app(standalone_mode=True)
    except ValidationError as error:
        print(f"longhaul: invalid settings: {error}", file=sys.stderr)
        status_code = 2
    except SystemExit as exit_:
        status_code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except KeyboardInterrupt:
        status_code = 130
    except BaseException:
        import traceback

        traceback.print_exc()
        status_code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(status_code)


if __name__ == "__main__":
    main()
