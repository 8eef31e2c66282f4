"""``longhaul schedules``: the schedules the catalog's pipelines declare, on the Temporal server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

import typer

from longhaul.cli.common import (
    cli_settings,
    with_temporal,
)

app = typer.Typer(help="Schedules declared in code.", no_args_is_help=True)


@app.command("sync")
def schedules_sync(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the changes without making them.")
    ] = False,
) -> None:
    """Make the server's schedules match the ones declared in code (idempotent)."""
    from longhaul.server.schedules import sync
    from longhaul.workflows.catalog import load_catalog

    settings = cli_settings()
    declared = load_catalog(settings.catalog).schedules(settings)
    changes = asyncio.run(with_temporal(settings, lambda c: sync(c, declared, settings, dry_run=dry_run)))
    for change in changes:
        typer.echo(("would " if dry_run and change.action != "unchanged" else "") + str(change))


@app.command("list")
def schedules_list() -> None:
    """longhaul's schedules with their next run times."""
    from longhaul.server.schedules import describe_all

    for info in asyncio.run(with_temporal(cli_settings(), describe_all)):
        state = "paused" if info.paused else "active"
        upcoming = ", ".join(t.strftime("%Y-%m-%d %H:%M:%S") for t in info.next_runs) or "-"
        typer.echo(f"{info.id}  {info.workflow}  {info.spec}  {state}  next: {upcoming}")


@app.command("pause")
def schedules_pause(schedule: str, note: Annotated[str, typer.Option()] = "paused from the CLI") -> None:
    """Pause a schedule (until unpaused, or until its declaration changes and sync replaces it)."""
    from longhaul.server.schedules import pause

    asyncio.run(with_temporal(cli_settings(), lambda c: pause(c, schedule, note)))
    typer.echo(f"paused {schedule}")


@app.command("unpause")
def schedules_unpause(schedule: str, note: Annotated[str, typer.Option()] = "unpaused from the CLI") -> None:
    from longhaul.server.schedules import unpause

    asyncio.run(with_temporal(cli_settings(), lambda c: unpause(c, schedule, note)))
    typer.echo(f"unpaused {schedule}")


@app.command("trigger")
def schedules_trigger(schedule: str) -> None:
    """Run a schedule's workflow now (its overlap policy still applies)."""
    from longhaul.server.schedules import trigger

    asyncio.run(with_temporal(cli_settings(), lambda c: trigger(c, schedule)))
    typer.echo(f"triggered {schedule}")


@app.command("backfill")
def schedules_backfill(
    schedule: str,
    start: Annotated[datetime, typer.Option("--from", help="ISO time, UTC unless given.")],
    end: Annotated[datetime, typer.Option("--to", help="ISO time, UTC unless given.")],
) -> None:
    """Run the actions the schedule would have taken between --from and --to."""
    from longhaul.server.schedules import backfill

    utc = [t if t.tzinfo else t.replace(tzinfo=UTC) for t in (start, end)]
    asyncio.run(with_temporal(cli_settings(), lambda c: backfill(c, schedule, utc[0], utc[1])))
    typer.echo(f"backfilled {schedule} from {utc[0].isoformat()} to {utc[1].isoformat()}")
