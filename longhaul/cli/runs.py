"""``longhaul runs``: read, watch and act on runs through the API."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from longhaul.cli.common import (
    UrlOption,
    api_client,
    echo_json,
    follow,
    print_outcome,
)
from longhaul.models import BulkAction, RunStatus

app = typer.Typer(help="Read and act on runs.", no_args_is_help=True)


@app.command("list")
def runs_list(
    status: Annotated[RunStatus | None, typer.Option(help="Only runs with this status.")] = None,
    workflow: Annotated[str | None, typer.Option(help="Only runs of this workflow.")] = None,
    event: Annotated[str | None, typer.Option(help="Only runs started by this event.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only runs with this tag.")] = None,
    search: Annotated[
        str | None,
        typer.Option("--search", "-q", help="Part of the business key (any case), a run or event id."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 20,
    cursor: Annotated[str | None, typer.Option(help="Page cursor from a previous listing.")] = None,
    system: Annotated[
        bool, typer.Option("--system", help="longhaul's own runs (its schedules), with an admin key.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the page as JSON.")] = False,
    url: UrlOption = None,
) -> None:
    """List runs, newest first."""
    with api_client(url) as client:
        page = client.runs.list(
            status=status,
            workflow=workflow,
            event=event,
            tag=tag,
            q=search,
            limit=limit,
            cursor=cursor,
            system=system,
        )
    if as_json:
        echo_json(page)
        return
    table = Table()
    for column in ("run", "workflow", "event", "key", "status", "progress", "stage", "created"):
        table.add_column(column, no_wrap=column in ("run", "status", "progress", "created"), overflow="fold")
    for run in page.runs:
        created = run.created_at.strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(
            run.id,
            run.workflow,
            run.event,
            run.business_key or run.event_id,  # the order id, the video id …; else the event's id
            run.status,
            f"{run.progress}%",
            run.pending_reason or run.stage or "",
            created,
        )
    Console(width=None if sys.stdout.isatty() else 200).print(table)  # piped: don't squeeze columns
    if page.next_cursor:
        typer.echo(f"more: --cursor {page.next_cursor}")


@app.command("show")
def runs_show(run_id: str, url: UrlOption = None) -> None:
    """Print a run's record (status, progress, logs, output, error) as JSON."""
    with api_client(url) as client:
        echo_json(client.runs.get(run_id))


@app.command("watch")
def runs_watch(run_id: str, url: UrlOption = None) -> None:
    """Follow a run live with a progress bar; exit 0 if it completes, 1 failed, 3 cancelled, 4 timed out."""
    with api_client(url) as client:
        run = follow(client, run_id)
    print_outcome(run)


@app.command("stream")
def runs_stream(
    run_id: str,
    name: Annotated[str | None, typer.Argument(help="The stream; none: list the run's streams.")] = None,
    after: Annotated[int, typer.Option(help="Start after this chunk (its seq); 0: the start.")] = 0,
    url: UrlOption = None,
) -> None:
    """Print a run's data stream (each chunk as written, from the start) until the run has finished;
    without a name, list its streams. A dropped connection resumes after the last chunk printed."""
    with api_client(url) as client:
        if name is None:
            for info in client.runs.streams(run_id):
                typer.echo(f"{info.name}\t{info.chunks} chunk(s)\tlast {info.last_at:%Y-%m-%d %H:%M:%S}")
            return
        while True:
            try:
                for chunk in client.runs.read_stream(run_id, name, after=after):
                    typer.echo(chunk.data)
                    after = chunk.seq
                return
            except httpx.TransportError:  # the API restarted or the connection dropped: resume
                time.sleep(1)


@app.command("cancel")
def runs_cancel(
    run_id: str,
    reason: Annotated[str | None, typer.Option(help="Why: kept in the run's record.")] = None,
    url: UrlOption = None,
) -> None:
    """Ask a run to stop (its workflow compensates and records ``cancelled``)."""
    with api_client(url) as client:
        echo_json(client.runs.cancel(run_id, reason))


@app.command("pause")
def runs_pause(
    run_id: str,
    reason: Annotated[str | None, typer.Option(help="Why: kept in the run's record.")] = None,
    url: UrlOption = None,
) -> None:
    """Pause a run: a waiting one is not started, a started one is paused in Temporal (its steps and
    timers wait), until ``runs unpause``."""
    with api_client(url) as client:
        echo_json(client.runs.pause(run_id, reason))


@app.command("unpause")
def runs_unpause(run_id: str, url: UrlOption = None) -> None:
    """Let a paused run go on."""
    with api_client(url) as client:
        echo_json(client.runs.unpause(run_id))


@app.command("replay")
def runs_replay(run_id: str, url: UrlOption = None) -> None:
    """Start a failed or cancelled run again with the same input, as a new run linked to it."""
    with api_client(url) as client:
        echo_json(client.runs.replay(run_id))


@app.command("resume")
def runs_resume(run_id: str, url: UrlOption = None) -> None:
    """Resume a failed run from the step that failed, on the code running now (the steps before it are
    not done again)."""
    with api_client(url) as client:
        echo_json(client.runs.resume(run_id))


@app.command("follow")
def runs_follow(
    tag: Annotated[str, typer.Option(help="Follow the runs with this tag.")],
    url: UrlOption = None,
) -> None:
    """Print a line for every run with TAG as it starts and changes (first those changed last), until
    interrupted."""
    with api_client(url) as client:
        for run in client.runs.stream_tagged(tag):
            detail = run.pending_reason or run.stage or ""
            typer.echo(f"{run.id} {run.workflow} {run.status} {run.progress}% {detail}".rstrip(), nl=True)


@app.command("access-token")
def runs_access_token(
    run: Annotated[str | None, typer.Option(help="The run the token may watch.")] = None,
    tag: Annotated[str | None, typer.Option(help="Or: the tag whose runs it may watch.")] = None,
    ttl: Annotated[int, typer.Option(help="Seconds it works.")] = 3600,
    url: UrlOption = None,
) -> None:
    """Mint a public access token (read-only, expiring) for a browser; prints it as JSON on stdout, with
    the address of the example page that shows it live (``page_url``)."""
    with api_client(url) as client:
        minted = client.create_access_token(run_id=run, tag=tag, ttl_seconds=ttl)
    echo_json(minted)


@app.command("bulk")
def runs_bulk(
    action: Annotated[BulkAction, typer.Argument(help="What to do to every matching run.")],
    workflow: Annotated[str | None, typer.Option(help="Only runs of this workflow.")] = None,
    status: Annotated[RunStatus | None, typer.Option(help="Only runs with this status.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only runs with this tag.")] = None,
    event: Annotated[str | None, typer.Option(help="Only runs started by this event.")] = None,
    since: Annotated[datetime | None, typer.Option(help="Only runs created at or after (ISO time).")] = None,
    until: Annotated[datetime | None, typer.Option(help="Only runs created before (ISO time).")] = None,
    reason: Annotated[str | None, typer.Option(help="Why: kept in the action's record.")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count the matching runs; change nothing.")
    ] = False,
    every: Annotated[
        bool, typer.Option("--all", help="Every run of the tenant (needed when no filter is given).")
    ] = False,
    url: UrlOption = None,
) -> None:
    """Cancel, replay or resume every matching run: counted first, then carried out by a bulk-action run
    followed here with a progress bar (exit 0 when it completes). Without a filter, --all is required."""
    filters = {"workflow": workflow, "status": status, "tag": tag, "event": event, "created_after": since,
               "created_before": until}  # fmt: skip
    with api_client(url) as client:
        answer = client.runs.bulk(action, dry_run=dry_run, reason=reason, all=every, **filters)
        shown = ", ".join(answer.sample) + (" …" if answer.matched > len(answer.sample) else "")
        typer.echo(f"{answer.matched} run(s) match{': ' + shown if shown else ''}", err=True)
        if answer.run is None:
            return
        run = follow(client, answer.run.run_id)
    print_outcome(run)
