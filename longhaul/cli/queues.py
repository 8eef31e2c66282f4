"""``longhaul queues``: the run queue's queues, with their waiting and running runs and their rules."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from longhaul.cli.common import UrlOption, api_client

app = typer.Typer()  # its command is the root's


@app.command()
def queues(
    as_json: Annotated[bool, typer.Option("--json", help="Print them as JSON.")] = False,
    url: UrlOption = None,
) -> None:
    """Each queue: pending (due, waiting for a slot or its turn), delayed, running, the oldest wait and
    its flow control (your tenant's runs)."""
    with api_client(url) as client:
        found = client.queues()
    if as_json:
        typer.echo(json.dumps([queue.model_dump(mode="json") for queue in found], indent=2))
        return
    table = Table()
    for column in ("queue", "pending", "delayed", "running", "oldest wait", "rules"):
        table.add_column(column, justify="right" if column in ("pending", "delayed", "running") else "left")
    for queue in found:
        wait = f"{queue.oldest_wait_seconds:.1f} s" if queue.pending else ""
        rules = "; ".join(queue.rules) or "no limits"
        table.add_row(queue.name, str(queue.pending), str(queue.delayed), str(queue.running), wait, rules)
    Console(width=None if sys.stdout.isatty() else 200).print(table)
