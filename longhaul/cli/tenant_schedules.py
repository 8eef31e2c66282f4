"""``longhaul tenant-schedules``: your tenant's schedules, made at run time through the API (the schedules
the pipelines declare in code are ``longhaul schedules``)."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from longhaul.cli.common import UrlOption, api_client, echo_json
from longhaul.tenant_schedules import Overlap

app = typer.Typer(help="Your tenant's schedules: an event sent on a cron or an interval (docs/schedules.md).")

Data = Annotated[str | None, typer.Option("--data", help="The event's payload as JSON.")]
Cron = Annotated[str | None, typer.Option(help="A cron expression, e.g. '0 3 * * *'.")]
Every = Annotated[float | None, typer.Option("--every", help="Or every this many seconds (60 and up).")]
Zone = Annotated[str | None, typer.Option("--timezone", help="The IANA zone the cron is read in.")]
OverlapOption = Annotated[Overlap | None, typer.Option(help="While the last firing's runs are open.")]
Note = Annotated[str | None, typer.Option(help="A note shown beside it.")]


def _spec(data: str | None, cron: str | None, every: float | None, **more: Any) -> dict[str, Any]:
    """What was given on the command line, as the API takes it."""
    given = {"cron": cron, "interval_seconds": every, **more}
    spec = {key: value for key, value in given.items() if value is not None}
    if data is not None:
        try:
            spec["payload"] = json.loads(data)
        except ValueError as error:
            raise typer.BadParameter(f"not JSON: {error}", param_hint="--data") from error
    return spec


@app.callback(invoke_without_command=True)
def tenant_schedules(
    context: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print them as JSON.")] = False,
    url: UrlOption = None,
) -> None:
    """Your tenant's schedules with their next firings."""
    if context.invoked_subcommand is not None:
        return
    with api_client(url) as client:
        found = client.schedules.list()
    if as_json:
        typer.echo(json.dumps([schedule.model_dump(mode="json") for schedule in found], indent=2))
        return
    table = Table()
    for column in ("id", "event", "when", "overlap", "state", "next"):
        table.add_column(column)
    for schedule in found:
        when = (
            f"cron {schedule.cron} ({schedule.timezone})"
            if schedule.cron
            else f"every {schedule.interval_seconds:g} s"
        )
        upcoming = ", ".join(t.strftime("%Y-%m-%d %H:%M") for t in schedule.next_runs[:2]) or "-"
        state = "paused" if schedule.paused else "active"
        table.add_row(schedule.id, schedule.event, when, schedule.overlap.value, state, upcoming)
    Console(width=None if sys.stdout.isatty() else 200).print(table)


@app.command("create")
def create(
    schedule: Annotated[str, typer.Argument(help="Your id for it (a repeat create returns the first).")],
    event: Annotated[str, typer.Option(help="The event sent at each firing.")],
    data: Data = None,
    cron: Cron = None,
    every: Every = None,
    timezone: Zone = None,
    overlap: OverlapOption = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
    note: Note = None,
    url: UrlOption = None,
) -> None:
    """Send EVENT for your tenant on a cron (in --timezone) or --every N seconds."""
    spec = _spec(data, cron, every, timezone=timezone, overlap=overlap, note=note, paused=paused or None)
    with api_client(url) as client:
        echo_json(client.schedules.create(schedule, event, **spec))


@app.command("update")
def update(
    schedule: str,
    data: Data = None,
    cron: Cron = None,
    every: Every = None,
    timezone: Zone = None,
    overlap: OverlapOption = None,
    paused: Annotated[bool | None, typer.Option("--paused/--active", help="Pause or unpause it.")] = None,
    note: Note = None,
    url: UrlOption = None,
) -> None:
    """Change what is given (the rest stays)."""
    spec = _spec(data, cron, every, timezone=timezone, overlap=overlap, note=note, paused=paused)
    with api_client(url) as client:
        echo_json(client.schedules.update(schedule, **spec))


@app.command("show")
def show(schedule: str, url: UrlOption = None) -> None:
    """One schedule, with its next and recent firings."""
    with api_client(url) as client:
        echo_json(client.schedules.get(schedule))


@app.command("trigger")
def trigger(schedule: str, url: UrlOption = None) -> None:
    """Fire it now (its overlap policy still applies)."""
    with api_client(url) as client:
        client.schedules.trigger(schedule)
    typer.echo(f"triggered {schedule}")


@app.command("delete")
def delete(schedule: str, url: UrlOption = None) -> None:
    """Delete it (runs it made go on)."""
    with api_client(url) as client:
        client.schedules.delete(schedule)
    typer.echo(f"deleted {schedule}")
