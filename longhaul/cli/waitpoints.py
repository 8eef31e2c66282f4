"""``longhaul waitpoints``: the tokens runs wait on (approvals and the like): list, show, complete."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from longhaul.cli.common import UrlOption, api_client, echo_json
from longhaul.models import WaitpointStatus

app = typer.Typer(
    help="Waitpoint tokens: what runs wait on until someone completes them.", no_args_is_help=True
)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise typer.BadParameter(f"not JSON: {error}") from None


@app.command("list")
def waitpoints_list(
    status: Annotated[WaitpointStatus | None, typer.Option(help="Only tokens with this status.")] = None,
    kind: Annotated[str | None, typer.Option(help="Only tokens of this kind (e.g. order.approval).")] = None,
    run: Annotated[str | None, typer.Option(help="Only the tokens of this run.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only tokens with this tag.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print them as JSON.")] = False,
    urls: Annotated[
        bool, typer.Option("--urls", help="Add each waiting token's callback URL (to hand to a person).")
    ] = False,
    url: UrlOption = None,
) -> None:
    """List tokens, newest first."""
    with api_client(url) as client:
        tokens = client.waitpoints.list(status=status, kind=kind, run_id=run, tag=tag, limit=limit)
    if as_json:
        typer.echo(json.dumps([token.model_dump(mode="json") for token in tokens], indent=2))
        return
    table = Table()
    columns = ("token", "kind", "status", "run", "until", "description", *(("callback URL",) if urls else ()))
    for column in columns:
        table.add_column(column, no_wrap=column in ("token", "status", "run", "until"), overflow="fold")
    for token in tokens:
        until = token.timeout_at.strftime("%Y-%m-%d %H:%M:%S")
        row = [token.id, token.kind, token.status, token.run_id, until, token.description or ""]
        table.add_row(*row, *([token.callback_url or ""] if urls else []))
    Console(width=None if sys.stdout.isatty() else 400).print(table)


@app.command("show")
def waitpoints_show(waitpoint_id: str, url: UrlOption = None) -> None:
    """Print a token (status, who completed it, its output, its callback URL) as JSON."""
    with api_client(url) as client:
        echo_json(client.waitpoints.get(waitpoint_id))


@app.command("complete")
def waitpoints_complete(
    waitpoint_id: str,
    output: Annotated[
        str, typer.Option(help="What the run receives, as JSON (order.approval: '{\"approved\": true}').")
    ] = "null",
    url: UrlOption = None,
) -> None:
    """Complete a token: its run goes on with OUTPUT. A token takes one completion."""
    value = _json(output)
    with api_client(url) as client:
        echo_json(client.waitpoints.complete(waitpoint_id, value))
