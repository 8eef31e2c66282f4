"""``longhaul queues``: the run queue's queues, with their waiting and running runs and their rules; and
what is set on them while they run (pauses, fair-share weights)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from longhaul.cli.common import UrlOption, api_client, echo_json

app = typer.Typer(help="The run queue's queues (docs/events.md, 'Flow control').")


@app.callback(invoke_without_command=True)
def queues(
    context: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print them as JSON.")] = False,
    url: UrlOption = None,
) -> None:
    """Each queue: pending (due, waiting for a slot or its turn), delayed, running, the oldest wait and
    its flow control (your tenant's runs)."""
    if context.invoked_subcommand is not None:
        return
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
        for pause in queue.pauses:
            held = f"tenant {pause.key}" if pause.key else "all"
            rules += f"; PAUSED ({held}): {pause.reason or 'no reason given'}"
        if queue.limits:
            rules += "; limits set " + ", ".join(f"{scope}={n}" for scope, n in queue.limits.items())
        if queue.weights:
            rules += "; weights " + ", ".join(f"{key}={weight:g}" for key, weight in queue.weights.items())
        table.add_row(queue.name, str(queue.pending), str(queue.delayed), str(queue.running), wait, rules)
    Console(width=None if sys.stdout.isatty() else 200).print(table)


@app.command("pause")
def queues_pause(
    queue: Annotated[str, typer.Argument(help="The queue.")],
    key: Annotated[str | None, typer.Option(help="Only this tenant's runs (a tenant key: its own).")] = None,
    reason: Annotated[str | None, typer.Option(help="Shown on every held run.")] = None,
    url: UrlOption = None,
) -> None:
    """Hold a queue's pending runs (or one tenant's) until resumed; started runs go on."""
    with api_client(url) as client:
        echo_json(client.pause_queue(queue, key, reason))


@app.command("resume")
def queues_resume(
    queue: Annotated[str, typer.Argument(help="The queue.")],
    key: Annotated[str | None, typer.Option(help="Only this tenant's runs.")] = None,
    url: UrlOption = None,
) -> None:
    """Let a paused queue's (or tenant's) runs start again."""
    with api_client(url) as client:
        client.resume_queue(queue, key)
    typer.echo(f"{queue}: resumed" + (f" for tenant {key}" if key else ""))


@app.command("limit")
def queues_limit(
    queue: Annotated[str, typer.Argument(help="The queue.")],
    scope: Annotated[
        str, typer.Argument(help="As a waiting run's reason names it, e.g. orders/tenant=acme.")
    ],
    limit: Annotated[
        int | None, typer.Argument(help="Runs at once, or starts per the declared period.")
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Back to the declared limit.")] = False,
    url: UrlOption = None,
) -> None:
    """Set (or --clear) a concurrency or rate limit for one scope, in place of the declared one (admin)."""
    _one_of(limit, clear, "limit")
    with api_client(url) as client:
        if limit is None:
            client.clear_limit(queue, scope)
            typer.echo(f"{scope}: back to its declared limit")
        else:
            echo_json(client.set_limit(queue, scope, limit))


@app.command("weight")
def queues_weight(
    queue: Annotated[str, typer.Argument(help="A queue with fair share.")],
    key: Annotated[str, typer.Argument(help="The key value: a tenant, or <tenant>/<value>.")],
    weight: Annotated[
        float | None, typer.Argument(help="Turns it takes to a weight-1 value's one (0 < weight ≤ 100).")
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Back to weight 1.")] = False,
    url: UrlOption = None,
) -> None:
    """Set (or --clear) a key value's fair-share weight, from the next claim on (admin keys)."""
    _one_of(weight, clear, "weight")
    with api_client(url) as client:
        if weight is None:
            client.clear_weight(queue, key)
            typer.echo(f"{queue}: {key} back to weight 1")
        else:
            echo_json(client.set_weight(queue, key, weight))


def _one_of(value: float | None, clear: bool, what: str) -> None:
    """A value to set, or --clear: exactly one (exit status 2 otherwise, as for a usage error)."""
    if (value is None) == (not clear):
        typer.echo(f"error: give a {what}, or --clear", err=True)
        raise typer.Exit(2)
