"""``longhaul webhooks``: dead letters of webhooks received (admin keys)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from longhaul.cli.common import (
    UrlOption,
    api_client,
    echo_json,
)

app = typer.Typer(help="Webhooks received: dead letters (admin keys).", no_args_is_help=True)


@app.command("dead-letters")
def webhooks_dead_letters(
    redelivered: Annotated[
        bool, typer.Option("--redelivered", help="Those re-delivered since, instead of those still dead.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print them as JSON.")] = False,
    url: UrlOption = None,
) -> None:
    """Signed webhooks that could not be processed (acknowledged to the provider, kept here)."""
    with api_client(url) as client:
        page = client.dead_letters.list(status="redelivered" if redelivered else "dead")
    if as_json:
        echo_json(page)
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


@app.command("redeliver")
def webhooks_redeliver(letter_id: str, url: UrlOption = None) -> None:
    """Process a dead letter's webhook again with the code running now; exit 1 if it still fails."""
    with api_client(url) as client:
        outcome = client.dead_letters.redeliver(letter_id)
    echo_json(outcome)
    if not outcome.received:
        raise typer.Exit(1)
